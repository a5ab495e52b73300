import { XapiFailure, toErrorDescription } from '../errors.js'
import { completeTask, createTask, failTask, requestCancel, taskHandle } from '../model/tasks.js'
import { missingSrOn } from '../model/vm-power.js'
import { hostFreeMemory, vmMemory, vmOperationCheck } from '../model/vm-state.js'
import { defineMethod, toBool, toInt, type CallCtx } from '../rpc/registry.js'
import { poolMigrateVm } from './vm.js'

/**
 * The evacuation plan of a host (xapi's compute_evacuation_plan): every resident non-control VM
 * gets the other enabled host with the most free memory that can take it, biggest VMs first;
 * the VMs that cannot move get their error.
 */
export function evacuationPlan(ctx: CallCtx, hostRef: string) {
  const db = ctx.db
  const host = db.require('host', hostRef)
  const others = [...db.all('host')]
    .filter(
      ([ref, h]) => ref !== hostRef && h.enabled && db.get(h.metrics as string)?.live !== false
    )
    .map(([ref]) => ref)
  const free = new Map(others.map((h) => [h, hostFreeMemory(db, h)]))
  const plan = new Map<string, string>()
  const errors = new Map<string, string[]>()
  const vms = (host.resident_VMs as string[])
    .map((ref) => [ref, db.get(ref)] as const)
    .filter(([, vm]) => vm && !vm.is_control_domain)
    .sort((a, b) => vmMemory(b[1]!) - vmMemory(a[1]!))
  for (const [ref, vm] of vms) {
    const err = vmOperationCheck(db, ref, vm!, 'pool_migrate')
    if (err) {
      errors.set(ref, err)
      continue
    }
    const needed = vmMemory(vm!)
    const storageOk = others.filter((h) => missingSrOn(db, ref, h) === undefined)
    if (others.length === 0) {
      errors.set(ref, ['NO_HOSTS_AVAILABLE'])
      continue
    }
    if (storageOk.length === 0) {
      errors.set(ref, ['VM_REQUIRES_SR', ref, missingSrOn(db, ref, others[0]!)!])
      continue
    }
    const fit = storageOk
      .filter((h) => free.get(h)! >= needed)
      .sort((a, b) => free.get(b)! - free.get(a)!)
    if (fit.length === 0) {
      const best = Math.max(...storageOk.map((h) => free.get(h)!))
      errors.set(ref, ['HOST_NOT_ENOUGH_FREE_MEMORY', String(needed), String(best)])
      continue
    }
    plan.set(ref, fit[0]!)
    free.set(fit[0]!, free.get(fit[0]!)! - needed)
  }
  return { plan, errors }
}

// host.disable(host, auto_enable = true)
defineMethod('host.disable', {
  arity: [2, 1],
  async: true,
  run(ctx, [host, autoEnable]) {
    ctx.db.require('host', host)
    if (autoEnable !== undefined) toBool(autoEnable, 'auto_enable')
    ctx.db.update(host as string, { enabled: false })
  },
})

defineMethod('host.enable', {
  arity: [1],
  async: true,
  run(ctx, [host]) {
    const h = ctx.db.require('host', host)
    if (ctx.db.get(h.metrics as string)?.live === false)
      throw new XapiFailure('HOST_OFFLINE', [host as string])
    ctx.db.update(host as string, { enabled: true })
  },
})

defineMethod('host.get_vms_which_prevent_evacuation', {
  arity: [1],
  async: true,
  run: (ctx, [host]) => Object.fromEntries(evacuationPlan(ctx, host as string).errors),
})

defineMethod('host.assert_can_evacuate', {
  arity: [1],
  async: true,
  run(ctx, [host]) {
    const first = evacuationPlan(ctx, host as string)
      .errors.values()
      .next()
    if (!first.done) throw new XapiFailure(first.value[0]!, first.value.slice(1))
  },
})

// host.evacuate(host, network = NULL, evacuate_batch_size = 0)
defineMethod('host.evacuate', {
  arity: [3, 2, 1],
  async: true,
  async run(ctx, [hostArg, _network, batchArg]) {
    const host = hostArg as string
    const h = ctx.db.require('host', host)
    ctx.task.setCancellable(true) // Xapi_host.evacuate: TaskHelper.set_cancellable
    const ops = h.current_operations as Record<string, string>
    if (Object.values(ops).includes('evacuate'))
      throw new XapiFailure('HOST_EVACUATE_IN_PROGRESS', [host])
    ctx.db.update(host, { current_operations: { ...ops, [ctx.task.ref]: 'evacuate' } })
    try {
      const { plan, errors } = evacuationPlan(ctx, host)
      const firstError = errors.values().next()
      if (!firstError.done) throw new XapiFailure(firstError.value[0]!, firstError.value.slice(1))
      const batch =
        batchArg === undefined || toInt(batchArg, 'evacuate_batch_size') <= 0 ? 10 : toInt(batchArg)
      const moves = [...plan]
      let done = 0
      const running = new Set<string>()
      const onCancel = () => running.forEach((t) => requestCancel(ctx.db, t))
      ctx.task.signal.addEventListener('abort', onCancel)
      try {
        for (let i = 0; i < moves.length; i += batch) {
          ctx.task.checkCancelled()
          const results = await Promise.allSettled(
            moves.slice(i, i + batch).map(async ([vm, dest]) => {
              const sub = migrateSubtask(ctx, vm, dest, running)
              try {
                await sub
              } catch (e) {
                if (!(e instanceof XapiFailure && e.code === 'VM_BAD_POWER_STATE')) throw e
              }
              ctx.task.setProgress(++done / Math.max(1, moves.length))
            })
          )
          // our own cancellation first (the subtasks were cancelled with it), then other failures
          ctx.task.checkCancelled()
          const failed = results.find((r) => r.status === 'rejected')
          if (failed) throw (failed as PromiseRejectedResult).reason
        }
      } finally {
        ctx.task.signal.removeEventListener('abort', onCancel)
      }
      ctx.task.checkCancelled()
      const left = (ctx.db.get(host)!.resident_VMs as string[]).filter((r) => {
        const vm = ctx.db.get(r)
        return vm && !vm.is_control_domain && vm.power_state === 'Running'
      })
      if (left.length > 0) {
        throw new XapiFailure('INTERNAL_ERROR', [
          `evacuate: ${left.length} VMs are still resident on ${h.uuid}`,
        ])
      }
    } finally {
      const cur = ctx.db.get(host)
      if (cur) {
        const rest = { ...(cur.current_operations as Record<string, string>) }
        delete rest[ctx.task.ref]
        ctx.db.update(host, { current_operations: rest })
      }
    }
  },
})

/** Runs one `Async.VM.pool_migrate` as a subtask of the current task (when it is a DB task). */
async function migrateSubtask(ctx: CallCtx, vm: string, dest: string, running: Set<string>) {
  if (!ctx.task.visible) return poolMigrateVm(ctx, vm, dest)
  const sub = createTask(ctx.db, { name_label: 'Async.VM.pool_migrate', hostRef: ctx.host.ref })
  ctx.db.update(sub, { subtask_of: ctx.task.ref })
  ctx.db.addToSet(ctx.task.ref, 'subtasks', sub)
  running.add(sub)
  try {
    await poolMigrateVm({ ...ctx, task: taskHandle(ctx.db, sub) }, vm, dest, sub)
    completeTask(ctx.db, sub, undefined)
  } catch (e) {
    failTask(ctx.db, sub, toErrorDescription(e))
    throw e
  } finally {
    running.delete(sub)
  }
}

defineMethod('host.get_servertime', {
  arity: [1],
  run: (ctx, [h]) => ctx.db.require('host', h) && new Date(),
})
defineMethod('host.get_server_localtime', {
  arity: [1],
  run: (ctx, [h]) => ctx.db.require('host', h) && new Date(),
})
// xapi: the PEM of the host's API server certificate (/etc/xensource/xapi-ssl.pem). Clients
// that pinned the master learn the members' certificates from it. Without TLS here: ''.
defineMethod('host.get_server_certificate', {
  arity: [1],
  run(ctx, [h]) {
    ctx.db.require('host', h)
    return ctx.pool.hosts.find((x) => x.ref === h)?.certificate?.cert ?? ''
  },
})
defineMethod('host.get_management_interface', {
  arity: [1],
  run(ctx, [h]) {
    ctx.db.require('host', h)
    const pif = ctx.db.find('PIF', (p) => p.host === h && p.management === true)
    if (!pif) throw new XapiFailure('HOST_HAS_NO_MANAGEMENT_IP', [])
    return pif[0]
  },
})
defineMethod('pool.get_license_state', {
  arity: [1],
  run: () => ({ edition: 'xcp-ng', expiry: 'never' }),
})
