import { XapiFailure } from '../errors.js'
import { newRef } from '../model/db.js'
import { newVmAppliance } from '../model/records.js'
import { syncHandle } from '../model/tasks.js'
import { applianceOperationCheck, refreshAppliance } from '../model/vm-state.js'
import { defineMethod, toBool, toMap, type CallCtx } from '../rpc/registry.js'
import { cleanShutdownVm, hardShutdownVm, shutdownVm, startVm } from './vm.js'

/*
 * VM_appliance: member VMs grouped by `order`; start runs groups in ascending order, the
 * shutdowns in descending order; within a group VMs run in parallel. VMs already in the target
 * state are skipped; failures → OPERATION_PARTIALLY_FAILED [operation, vm…].
 */

async function runGroups(
  ctx: CallCtx,
  appliance: string,
  operation: string,
  ascending: boolean,
  wanted: (powerState: string) => boolean,
  fn: (subCtx: CallCtx, vm: string) => Promise<void>
): Promise<void> {
  const err = applianceOperationCheck(ctx.db, appliance, operation)
  if (err) throw new XapiFailure(err[0]!, err.slice(1))
  const a = ctx.db.require('VM_appliance', appliance)
  ctx.db.update(appliance, {
    current_operations: { ...a.current_operations, [ctx.task.ref]: operation },
  })
  refreshAppliance(ctx.db, appliance)
  try {
    await runGroupsInner(ctx, a, operation, ascending, wanted, fn)
  } finally {
    const cur = ctx.db.get(appliance)
    if (cur) {
      const ops = { ...(cur.current_operations as Record<string, string>) }
      delete ops[ctx.task.ref]
      ctx.db.update(appliance, { current_operations: ops })
      refreshAppliance(ctx.db, appliance)
    }
  }
}

async function runGroupsInner(
  ctx: CallCtx,
  a: Record<string, unknown>,
  operation: string,
  ascending: boolean,
  wanted: (powerState: string) => boolean,
  fn: (subCtx: CallCtx, vm: string) => Promise<void>
): Promise<void> {
  const vms = (a.VMs as string[]).filter((r) => ctx.db.has('VM', r))
  const orders = [...new Set(vms.map((r) => Number(ctx.db.get(r)!.order)))].sort((x, y) =>
    ascending ? x - y : y - x
  )
  const failed: string[] = []
  let done = 0
  for (const order of orders) {
    ctx.task.checkCancelled()
    const group = vms.filter(
      (r) => Number(ctx.db.get(r)?.order) === order && wanted(String(ctx.db.get(r)?.power_state))
    )
    await Promise.all(
      group.map(async (vm) => {
        try {
          await fn({ ...ctx, task: { ...syncHandle(newRef()), signal: ctx.task.signal } }, vm)
        } catch {
          failed.push(vm)
        }
        ctx.task.setProgress(++done / Math.max(1, vms.length))
      })
    )
  }
  if (failed.length > 0) throw new XapiFailure('OPERATION_PARTIALLY_FAILED', [operation, ...failed])
}

defineMethod('VM_appliance.start', {
  arity: [2],
  async: true,
  run: (ctx, [a, paused]) =>
    runGroups(
      ctx,
      a as string,
      'start',
      true,
      (ps) => ps === 'Halted',
      (c, vm) => startVm(c, vm, { paused: toBool(paused, 'paused') })
    ),
})
defineMethod('VM_appliance.clean_shutdown', {
  arity: [1],
  async: true,
  run: (ctx, [a]) =>
    runGroups(ctx, a as string, 'clean_shutdown', false, (ps) => ps === 'Running', cleanShutdownVm),
})
defineMethod('VM_appliance.hard_shutdown', {
  arity: [1],
  async: true,
  run: (ctx, [a]) =>
    runGroups(ctx, a as string, 'hard_shutdown', false, (ps) => ps !== 'Halted', hardShutdownVm),
})
defineMethod('VM_appliance.shutdown', {
  arity: [1],
  async: true,
  run: (ctx, [a]) =>
    runGroups(ctx, a as string, 'shutdown', false, (ps) => ps !== 'Halted', shutdownVm),
})
defineMethod('VM_appliance.create', {
  arity: [1],
  async: true,
  run(ctx, [rec]) {
    const r = toMap(rec, 'args') as Record<string, unknown>
    // no VMs yet: nothing is allowed ("Appliance has no VMs.")
    return ctx.db.create(
      'VM_appliance',
      newVmAppliance({
        name_label: r.name_label ?? '',
        name_description: r.name_description ?? '',
        allowed_operations: [],
      })
    )
  },
})
defineMethod('VM_appliance.destroy', {
  arity: [1],
  async: true,
  run(ctx, [a]) {
    const rec = ctx.db.require('VM_appliance', a)
    for (const vm of rec.VMs as string[])
      if (ctx.db.has('VM', vm)) ctx.db.update(vm, { appliance: 'OpaqueRef:NULL' })
    ctx.db.destroy(a as string)
  },
})
