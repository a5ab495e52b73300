import { XapiFailure } from '../errors.js'
import { destroyVdi } from '../model/storage.js'
import { requestCancel } from '../model/tasks.js'
import { copyVm, destroyVmRecord } from '../model/vm-copy.js'
import { assertCanRunOn, placeVm, setHalted, setRunning, setSuspended } from '../model/vm-power.js'
import { assertVmOperation, refreshVm, vmMemory, withVmOperation } from '../model/vm-state.js'
import { defineMethod, toBool, toInt, toMap, toStr, type CallCtx } from '../rpc/registry.js'
import { DURATIONS, work } from './work.js'

const S = 1000

function guest(ctx: CallCtx, ref: string) {
  return ctx.db.guests.get(ref) ?? { behaviour: 'normal' as const }
}

/** Sleeps `VM.start_delay` / `VM.shutdown_delay` seconds, as xapi does after the operation. */
async function delayAfter(ctx: CallCtx, ref: string, field: 'start_delay' | 'shutdown_delay') {
  const s = Number(ctx.db.get(ref)?.[field] ?? 0)
  if (s > 0) await ctx.state.sleep(s * S)
}

export async function startVm(
  ctx: CallCtx,
  ref: string,
  opts: { host?: string; paused?: boolean; op?: string }
) {
  const op = opts.op ?? (opts.host ? 'start_on' : 'start')
  await withVmOperation(ctx.db, ref, op, ctx.task.ref, async () => {
    const host = opts.host ?? placeVm(ctx.db, ref)
    assertCanRunOn(ctx.db, ref, host)
    ctx.db.update(ref, { scheduled_to_be_resident_on: host })
    try {
      await work(ctx, DURATIONS.start, { to: 0.9, cancellable: true })
    } catch (e) {
      ctx.db.update(ref, { scheduled_to_be_resident_on: 'OpaqueRef:NULL' })
      throw e
    }
    assertCanRunOn(ctx.db, ref, host)
    setRunning(ctx.db, ref, host, opts.paused ?? false)
  })
  await delayAfter(ctx, ref, 'start_delay')
}

/** The guest's answer to a clean shutdown/reboot/suspend request; `timeoutS` bounds the wait. */
async function askGuest(
  ctx: CallCtx,
  ref: string,
  kind: 'shutdown' | 'suspend',
  timeoutS?: number
) {
  const g = guest(ctx, ref)
  if (g.behaviour === 'no-pv') throw new XapiFailure('VM_LACKS_FEATURE', [ref])
  if (g.behaviour === 'ignore') {
    const waitS = Math.min(g.cleanShutdownS ?? DURATIONS.ignoreGuestS, timeoutS ?? Infinity)
    await work(ctx, waitS * S, { to: 0.9, cancellable: true })
    throw new XapiFailure(
      kind === 'shutdown'
        ? 'VM_FAILED_SHUTDOWN_ACKNOWLEDGMENT'
        : 'VM_FAILED_SUSPEND_ACKNOWLEDGMENT',
      [ref]
    )
  }
  const ms =
    g.behaviour === 'slow'
      ? (g.cleanShutdownS ?? DURATIONS.slowGuestS) * S
      : DURATIONS.cleanShutdown
  if (timeoutS !== undefined && ms > timeoutS * S) {
    await work(ctx, timeoutS * S, { to: 0.9, cancellable: true })
    throw new XapiFailure('VM_SHUTDOWN_TIMEOUT', [ref, String(timeoutS)])
  }
  await work(ctx, ms, { to: 0.9, cancellable: true })
}

export async function cleanShutdownVm(ctx: CallCtx, ref: string) {
  await withVmOperation(ctx.db, ref, 'clean_shutdown', ctx.task.ref, async () => {
    await askGuest(ctx, ref, 'shutdown')
    setHalted(ctx.db, ref)
  })
  await delayAfter(ctx, ref, 'shutdown_delay')
}

/**
 * message_forwarding.ml: a hard shutdown/reboot first cancels the tasks of the gentler operations
 * running on the VM (they end `cancelled`).
 */
const CANCELLED_BY_HARD: Record<string, string[]> = {
  hard_shutdown: [
    'clean_shutdown',
    'clean_reboot',
    'hard_reboot',
    'pool_migrate',
    'call_plugin',
    'suspend',
    'shutdown',
  ],
  hard_reboot: [
    'clean_shutdown',
    'clean_reboot',
    'pool_migrate',
    'call_plugin',
    'suspend',
    'shutdown',
  ],
}
function cancelGentlerOps(ctx: CallCtx, ref: string, op: string): void {
  const ops = ctx.db.get(ref)?.current_operations as Record<string, string> | undefined
  for (const [task, o] of Object.entries(ops ?? {}))
    if (CANCELLED_BY_HARD[op]!.includes(o) && ctx.db.has('task', task))
      requestCancel(ctx.db, task, ctx.task.ref)
}

export async function hardShutdownVm(ctx: CallCtx, ref: string) {
  await withVmOperation(ctx.db, ref, 'hard_shutdown', ctx.task.ref, async () => {
    cancelGentlerOps(ctx, ref, 'hard_shutdown')
    await work(ctx, DURATIONS.hardShutdown, { to: 0.9 })
    setHalted(ctx.db, ref)
  })
  await delayAfter(ctx, ref, 'shutdown_delay')
}

/** VM.shutdown: clean with a timeout (shutdown_delay or 1200 s), falling back to hard on any error. */
export async function shutdownVm(ctx: CallCtx, ref: string) {
  await withVmOperation(ctx.db, ref, 'shutdown', ctx.task.ref, async (vm) => {
    if (vm.power_state === 'Running') {
      const delay = Number(vm.shutdown_delay)
      try {
        await askGuest(ctx, ref, 'shutdown', delay > 0 ? delay : 1200)
        setHalted(ctx.db, ref)
        return
      } catch (e) {
        if (e instanceof XapiFailure && e.code === 'TASK_CANCELLED') throw e
      }
    }
    await work(ctx, DURATIONS.hardShutdown, { from: 0.9, to: 0.95 })
    setHalted(ctx.db, ref)
  })
  await delayAfter(ctx, ref, 'shutdown_delay')
}

defineMethod('VM.start', {
  arity: [3],
  async: true,
  run: (ctx, [vm, paused, _force]) =>
    startVm(ctx, vm as string, { paused: toBool(paused, 'start_paused') }),
})
defineMethod('VM.start_on', {
  arity: [4],
  async: true,
  run(ctx, [vm, host, paused, _force]) {
    ctx.db.require('VM', vm)
    ctx.db.require('host', host)
    return startVm(ctx, vm as string, {
      host: host as string,
      paused: toBool(paused, 'start_paused'),
    })
  },
})
defineMethod('VM.clean_shutdown', {
  arity: [1],
  async: true,
  run: (ctx, [vm]) => cleanShutdownVm(ctx, vm as string),
})
defineMethod('VM.hard_shutdown', {
  arity: [1],
  async: true,
  run: (ctx, [vm]) => hardShutdownVm(ctx, vm as string),
})
defineMethod('VM.shutdown', {
  arity: [1],
  async: true,
  run: (ctx, [vm]) => shutdownVm(ctx, vm as string),
})

defineMethod('VM.clean_reboot', {
  arity: [1],
  async: true,
  run: (ctx, [vm]) =>
    withVmOperation(ctx.db, vm as string, 'clean_reboot', ctx.task.ref, async (rec) => {
      await askGuest(ctx, vm as string, 'shutdown')
      await work(ctx, DURATIONS.start, { from: 0.5, to: 0.95 })
      setRunning(ctx.db, vm as string, rec.resident_on as string, false, true)
    }),
})
defineMethod('VM.hard_reboot', {
  arity: [1],
  async: true,
  run: (ctx, [vm]) =>
    withVmOperation(ctx.db, vm as string, 'hard_reboot', ctx.task.ref, async (rec) => {
      cancelGentlerOps(ctx, vm as string, 'hard_reboot')
      await work(ctx, DURATIONS.reboot, { to: 0.95 })
      setRunning(ctx.db, vm as string, rec.resident_on as string, false, true)
    }),
})
defineMethod('VM.suspend', {
  arity: [1],
  async: true,
  run: (ctx, [vm]) =>
    withVmOperation(ctx.db, vm as string, 'suspend', ctx.task.ref, async () => {
      await askGuest(ctx, vm as string, 'suspend')
      await work(ctx, DURATIONS.suspend, { from: 0.5, to: 0.95, cancellable: true })
      setSuspended(ctx.db, vm as string, ctx.pool.ref)
    }),
})

async function resumeVm(ctx: CallCtx, ref: string, opts: { host?: string; paused: boolean }) {
  await withVmOperation(
    ctx.db,
    ref,
    opts.host ? 'resume_on' : 'resume',
    ctx.task.ref,
    async (vm) => {
      const host = opts.host ?? placeVm(ctx.db, ref)
      assertCanRunOn(ctx.db, ref, host)
      await work(ctx, DURATIONS.resume, { to: 0.9, cancellable: true })
      const suspendVdi = vm.suspend_VDI as string
      setRunning(ctx.db, ref, host, opts.paused)
      if (ctx.db.has('VDI', suspendVdi)) destroyVdi(ctx.db, suspendVdi)
      ctx.db.update(ref, { suspend_VDI: 'OpaqueRef:NULL' })
    }
  )
}
defineMethod('VM.resume', {
  arity: [3],
  async: true,
  run: (ctx, [vm, paused, _force]) =>
    resumeVm(ctx, vm as string, { paused: toBool(paused, 'start_paused') }),
})
defineMethod('VM.resume_on', {
  arity: [4],
  async: true,
  run(ctx, [vm, host, paused, _force]) {
    ctx.db.require('host', host)
    return resumeVm(ctx, vm as string, {
      host: host as string,
      paused: toBool(paused, 'start_paused'),
    })
  },
})
defineMethod('VM.pause', {
  arity: [1],
  async: true,
  run: (ctx, [vm]) =>
    withVmOperation(ctx.db, vm as string, 'pause', ctx.task.ref, async () => {
      await work(ctx, DURATIONS.pause)
      ctx.db.update(vm as string, { power_state: 'Paused' })
    }),
})
defineMethod('VM.unpause', {
  arity: [1],
  async: true,
  run: (ctx, [vm]) =>
    withVmOperation(ctx.db, vm as string, 'unpause', ctx.task.ref, async () => {
      await work(ctx, DURATIONS.pause)
      ctx.db.update(vm as string, { power_state: 'Running' })
    }),
})
defineMethod('VM.power_state_reset', {
  arity: [1],
  async: true,
  run(ctx, [vm]) {
    const rec = ctx.db.require('VM', vm)
    if (rec.is_control_domain) throw new XapiFailure('CANNOT_RESET_CONTROL_DOMAIN', [vm as string])
    setHalted(ctx.db, vm as string)
  },
})

// VM.snapshot(vm, new_name, ignore_vdis = []): disks cloned, snapshot Halted.
defineMethod('VM.snapshot', {
  arity: [3, 2],
  async: true,
  run: (ctx, [vm, name]) =>
    withVmOperation(ctx.db, vm as string, 'snapshot', ctx.task.ref, async () => {
      await work(ctx, DURATIONS.snapshot, { to: 0.9 })
      return copyVm(ctx.db, vm as string, { name: toStr(name, 'new_name'), snapshot: true })
    }),
})
defineMethod('VM.clone', {
  arity: [2],
  async: true,
  run: (ctx, [vm, name]) =>
    withVmOperation(ctx.db, vm as string, 'clone', ctx.task.ref, async () => {
      await work(ctx, DURATIONS.clone, { to: 0.9 })
      return copyVm(ctx.db, vm as string, { name: toStr(name, 'new_name'), snapshot: false })
    }),
})
defineMethod('VM.copy', {
  arity: [3],
  async: true,
  run(ctx, [vm, name, sr]) {
    const toSr = sr === 'OpaqueRef:NULL' || sr === '' ? undefined : (sr as string)
    if (toSr !== undefined) ctx.db.require('SR', toSr)
    return withVmOperation(ctx.db, vm as string, 'copy', ctx.task.ref, async () => {
      await work(ctx, DURATIONS.clone, { to: 0.9 })
      return copyVm(ctx.db, vm as string, {
        name: toStr(name, 'new_name'),
        snapshot: false,
        sr: toSr,
      })
    })
  },
})
defineMethod('VM.provision', {
  arity: [1],
  async: true,
  run: (ctx, [vm]) =>
    withVmOperation(ctx.db, vm as string, 'provision', ctx.task.ref, () => undefined),
})

// VM.destroy keeps the VDIs (as xapi does); a snapshot's own VDIs go with it.
defineMethod('VM.destroy', {
  arity: [1],
  async: true,
  run(ctx, [vm]) {
    const rec = assertVmOperation(ctx.db, vm as string, 'destroy')
    if (rec.is_a_snapshot) {
      for (const vbd of rec.VBDs as string[]) {
        const vdi = ctx.db.get(vbd)?.VDI as string
        if (ctx.db.has('VDI', vdi)) destroyVdi(ctx.db, vdi)
      }
    }
    if (ctx.db.has('VDI', rec.suspend_VDI)) destroyVdi(ctx.db, rec.suspend_VDI as string)
    destroyVmRecord(ctx.db, vm as string)
  },
})

defineMethod('VM.assert_operation_valid', {
  arity: [2],
  async: true, // datamodel default flags [Session; Async]
  run: (ctx, [vm, op]) => void assertVmOperation(ctx.db, vm as string, toStr(op, 'op')),
})
defineMethod('VM.update_allowed_operations', {
  arity: [1],
  async: true,
  run(ctx, [vm]) {
    ctx.db.require('VM', vm)
    refreshVm(ctx.db, vm as string)
  },
})
defineMethod('VM.assert_can_boot_here', {
  arity: [2],
  async: true,
  run(ctx, [vm, host]) {
    ctx.db.require('VM', vm)
    ctx.db.require('host', host)
    assertCanRunOn(ctx.db, vm as string, host as string)
  },
})
defineMethod('VM.get_possible_hosts', {
  arity: [1],
  async: true,
  run(ctx, [vm]) {
    ctx.db.require('VM', vm)
    return [...ctx.db.all('host').keys()].filter((h) => {
      try {
        assertCanRunOn(ctx.db, vm as string, h)
        return true
      } catch {
        return false
      }
    })
  },
})
defineMethod('VM.set_memory_limits', {
  arity: [5],
  async: true,
  run(ctx, [vm, smin, smax, dmin, dmax]) {
    assertVmOperation(ctx.db, vm as string, 'changing_memory_limits')
    const names = ['static_min', 'static_max', 'dynamic_min', 'dynamic_max']
    const v = [smin, smax, dmin, dmax].map((x, i) => toInt(x, names[i]))
    if (!(v[0]! <= v[2]! && v[2]! <= v[3]! && v[3]! <= v[1]!)) {
      throw new XapiFailure('MEMORY_CONSTRAINT_VIOLATION', [
        'Memory limits must satisfy: static_min ≤ dynamic_min ≤ dynamic_max ≤ static_max',
      ])
    }
    ctx.db.update(vm as string, {
      memory_static_min: v[0],
      memory_static_max: v[1],
      memory_dynamic_min: v[2],
      memory_dynamic_max: v[3],
    })
  },
})

/** VM.pool_migrate(vm, host, options): live move inside the pool (memory-proportional time). */
export async function poolMigrateVm(
  ctx: CallCtx,
  ref: string,
  host: string,
  taskRef = ctx.task.ref
) {
  ctx.db.require('host', host)
  await withVmOperation(ctx.db, ref, 'pool_migrate', taskRef, async (vm) => {
    assertCanRunOn(ctx.db, ref, host)
    if (vm.resident_on === host) return
    ctx.db.update(ref, { scheduled_to_be_resident_on: host })
    try {
      await work(ctx, (vmMemory(vm) / DURATIONS.migrateMemoryBytesPerS) * S + 500, {
        to: 0.95,
        cancellable: true,
      })
    } finally {
      ctx.db.update(ref, { scheduled_to_be_resident_on: 'OpaqueRef:NULL' })
    }
    assertCanRunOn(ctx.db, ref, host)
    setRunning(ctx.db, ref, host, false)
  })
}
defineMethod('VM.pool_migrate', {
  arity: [3],
  async: true,
  run(ctx, [vm, host, options]) {
    toMap(options, 'options')
    return poolMigrateVm(ctx, vm as string, host as string)
  },
})
