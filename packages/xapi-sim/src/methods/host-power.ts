import { XapiFailure } from '../errors.js'
import { newRef } from '../model/db.js'
import { syncHandle } from '../model/tasks.js'
import { vmOperationCheck } from '../model/vm-state.js'
import { defineMethod, type CallCtx } from '../rpc/registry.js'
import { evacuationPlan } from './host.js'
import { cleanShutdownVm, hardShutdownVm, poolMigrateVm } from './vm.js'

const S = 1000

/** Running/Paused resident user VMs, without the `auto_poweroff` opt-out key. */
function liveVms(ctx: CallCtx, host: string, optedOut = false): string[] {
  return (ctx.db.get(host)!.resident_VMs as string[]).filter((r) => {
    const vm = ctx.db.get(r)
    if (!vm || vm.is_control_domain) return false
    if (vm.power_state !== 'Running' && vm.power_state !== 'Paused') return false
    return optedOut || !Object.hasOwn(vm.other_config as object, 'auto_poweroff')
  })
}

function sub(ctx: CallCtx): CallCtx {
  return { ...ctx, task: syncHandle(newRef()) }
}

/** Clean shutdown (60 s), then hard shutdown for what is still live (Vm_evacuation.shutdown). */
async function shutdownAll(ctx: CallCtx, vms: string[]): Promise<void> {
  const clean = vms.filter((vm) => !vmOperationCheck(ctx.db, vm, ctx.db.get(vm)!, 'clean_shutdown'))
  await Promise.race([
    Promise.allSettled(clean.map((vm) => cleanShutdownVm(sub(ctx), vm))),
    ctx.state.sleep(60 * S),
  ])
  const live = vms.filter((vm) =>
    ['Running', 'Paused'].includes(String(ctx.db.get(vm)?.power_state))
  )
  await Promise.allSettled(live.map((vm) => hardShutdownVm(sub(ctx), vm)))
}

/**
 * host.shutdown / host.reboot: the host must be disabled (HOST_NOT_DISABLED); then xapi's
 * prepare_for_poweroff (Vm_evacuation.ensure_no_vms): VMs that cannot be evacuated are shut down
 * (clean, then hard), the others evacuated, what is left shut down; VMs with an `auto_poweroff`
 * key in other_config are never shut down. The host then stops answering (host_metrics.live =
 * false); a reboot brings it back, enabled, after 60 s (scaled).
 */
async function powerOff(ctx: CallCtx, host: string, reboot: boolean): Promise<void> {
  const h = ctx.db.require('host', host)
  if (h.enabled) throw new XapiFailure('HOST_NOT_DISABLED', [])
  const blocked = [...evacuationPlan(ctx, host).errors.keys()].filter((vm) =>
    liveVms(ctx, host).includes(vm)
  )
  await shutdownAll(ctx, blocked)
  ctx.task.setProgress(0.3)
  const { plan } = evacuationPlan(ctx, host)
  await Promise.allSettled(
    [...plan].map(([vm, dest]) => poolMigrateVm(sub(ctx), vm, dest, newRef()))
  )
  ctx.task.setProgress(0.6)
  await shutdownAll(ctx, liveVms(ctx, host))
  ctx.task.setProgress(0.9)
  ctx.db.update(h.metrics as string, { live: false, last_updated: new Date() })
  if (reboot) {
    void ctx.state.sleep(60 * S).then(() => {
      if (ctx.state.closing.signal.aborted || !ctx.db.get(host)) return
      if (ctx.db.get(h.metrics as string))
        ctx.db.update(h.metrics as string, { live: true, last_updated: new Date() })
      ctx.db.update(host, { enabled: true })
    })
  }
}

defineMethod('host.shutdown', {
  arity: [1],
  async: true,
  run: (ctx, [h]) => powerOff(ctx, h as string, false),
})
defineMethod('host.reboot', {
  arity: [1],
  async: true,
  run: (ctx, [h]) => powerOff(ctx, h as string, true),
})

// pool.designate_new_master(host): the given host becomes master (the old one answers
// HOST_IS_SLAVE from now on); sessions stay valid, as after a real transition.
defineMethod('pool.designate_new_master', {
  arity: [1],
  async: true,
  async run(ctx, [h]) {
    const host = ctx.db.require('host', h)
    await ctx.state.sleep(5 * S)
    ctx.state.faults.makeMaster(ctx.pool.name, host.name_label as string)
  },
})
