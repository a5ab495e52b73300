import { describeError } from '../../lib/errors.js'
import type { HostShutdownEvent } from './events.js'
import {
  evacuationBudgetS,
  isShutdownCandidate,
  toPlannedVm,
  type PlannedVm,
  type ShutdownHostRecord,
  type ShutdownPlan,
  type ShutdownVmRecord,
} from './plan.js'
import type { VmOutcome } from './vm-shutdown.js'
import { sleep } from '../../lib/sleep.js'
import { abortAfter, type ShutdownXapi } from './xapi.js'

/** What `--evacuate` would do. */
export type EvacuationPlan = {
  /** name_label of the other enabled hosts of the pool. */
  readonly targets: readonly string[]
  readonly budgetMs: number
  readonly movable: readonly PlannedVm[]
  /** VMs `host.evacuate` cannot place, with the reason XAPI gives. */
  readonly blocked: ReadonlyArray<{ readonly vm: PlannedVm; readonly reason: string }>
}

/**
 * Plans the evacuation with read-only calls: other enabled hosts, the VMs that would prevent it
 * (`host.get_vms_which_prevent_evacuation`; Paused VMs cannot be live-migrated either) and the
 * time budget.
 */
export async function planEvacuation(
  xapi: ShutdownXapi,
  input: {
    readonly hosts: Readonly<Record<string, ShutdownHostRecord>>
    readonly hostRef: string
    readonly plan: ShutdownPlan
    readonly budgetMs?: number
    readonly signal: AbortSignal
  }
): Promise<EvacuationPlan> {
  const { hosts, hostRef, plan, signal } = input
  const targets = Object.entries(hosts)
    .filter(([ref, host]) => ref !== hostRef && host.enabled)
    .map(([, host]) => host.name_label)
  const vms = plan.groups.flatMap((g) => g.vms)
  let prevent: Record<string, readonly string[]> = {}
  if (targets.length > 0 && vms.length > 0) {
    try {
      prevent = await xapi.callWith('host.get_vms_which_prevent_evacuation', [hostRef], { signal })
    } catch (error) {
      // Older or partial servers: without the list, host.evacuate itself tells what cannot
      // move (it then moves nothing, and everything is shut down).
      if (signal.aborted) throw error
    }
  }
  const blocked: Array<{ vm: PlannedVm; reason: string }> = []
  const movable: PlannedVm[] = []
  for (const vm of vms) {
    const why = prevent[vm.ref]
    if (why !== undefined) blocked.push({ vm, reason: formatDescription(why) })
    else if (vm.powerState === 'Paused')
      blocked.push({ vm, reason: 'paused: cannot be live-migrated' })
    else movable.push(vm)
  }
  const budgetMs = input.budgetMs ?? (await memoryBudgetMs(xapi, hosts[hostRef]?.metrics, signal))
  return { targets, budgetMs, movable, blocked }
}

/** The dom0 budget from the host's used memory; 240 s when it cannot be read. */
async function memoryBudgetMs(
  xapi: ShutdownXapi,
  metrics: string | undefined,
  signal: AbortSignal
): Promise<number> {
  if (metrics === undefined) return 240_000
  try {
    const m = await xapi.callWith<{
      memory_total?: number | string
      memory_free?: number | string
    }>('host_metrics.get_record', [metrics], { signal })
    return evacuationBudgetS(m.memory_total, m.memory_free) * 1000
  } catch (error) {
    if (signal.aborted) throw error
    return 240_000
  }
}

/** What {@link evacuate} needs. */
export type EvacuateInput = {
  readonly hostRef: string
  readonly vms: readonly PlannedVm[]
  readonly budgetMs: number
  readonly work: AbortSignal
  readonly interrupt: AbortSignal
  readonly final: AbortSignal
  readonly emit: (event: HostShutdownEvent) => void
  /** Records the final result of a VM that moved (or stopped on its own). */
  readonly done: (vm: PlannedVm, outcome: VmOutcome) => void
}

/**
 * `Async.host.evacuate` within the budget (the dom0 way), cancelled when the budget, the deadline
 * or an interrupt comes first; then the tasks still moving VMs are cancelled. Never throws.
 * Returns the VMs still on the host, Running or Paused (fresh records), to be shut down.
 */
export async function evacuate(xapi: ShutdownXapi, input: EvacuateInput): Promise<PlannedVm[]> {
  const { hostRef, vms, work, interrupt, emit } = input
  emit({ kind: 'evacuate-start', vms: vms.length, budgetS: input.budgetMs / 1000 })
  const budget = abortAfter(
    input.budgetMs,
    new Error(`evacuation not done within ${input.budgetMs / 1000} s`)
  )
  let outcome: 'done' | 'failed' | 'timeout' | 'deadline' | 'interrupted' = 'done'
  let error: string | undefined
  try {
    await xapi.callAsync('host.evacuate', [hostRef], {
      signal: AbortSignal.any([work, budget.signal]),
    })
  } catch (e) {
    outcome = interrupt.aborted
      ? 'interrupted'
      : work.aborted
        ? 'deadline'
        : budget.signal.aborted
          ? 'timeout'
          : 'failed'
    error = outcome === 'failed' ? describeError(e) : undefined
  } finally {
    budget.clear()
  }
  // After an interrupt, still find out what moved, but quickly.
  const readSignal = interrupt.aborted ? AbortSignal.timeout(5_000) : input.final
  if (outcome !== 'done' && outcome !== 'failed')
    await cancelMigrations(xapi, hostRef, vms, readSignal)
  const records = await readVms(xapi, readSignal)
  const left: PlannedVm[] = []
  let migrated = 0
  for (const vm of vms) {
    const record = records?.[vm.ref]
    if (records === undefined) left.push(vm)
    else if (record === undefined)
      input.done(vm, {
        status: 'failed',
        action: 'none',
        error: 'VM disappeared during the evacuation',
        errorCode: 'HANDLE_INVALID',
      })
    else if (record.resident_on !== hostRef && record.power_state === 'Running') {
      migrated++
      input.done(vm, { status: 'ok', action: 'migrated' })
    } else if (isShutdownCandidate(record, hostRef)) left.push(toPlannedVm(vm.ref, record))
    else if (record.power_state === 'Halted') input.done(vm, { status: 'ok', action: 'none' })
    else
      input.done(vm, {
        status: 'skipped',
        action: 'none',
        error: `${record.power_state} after the evacuation`,
      })
  }
  emit({ kind: 'evacuate-end', outcome, migrated, remaining: left.length, error })
  return left
}

/**
 * Cancels the tasks still working on the VMs left on the host (as the dom0 program did) and
 * waits, at most 30 s, for them to end so that shutdowns do not collide with migrations.
 */
async function cancelMigrations(
  xapi: ShutdownXapi,
  hostRef: string,
  vms: readonly PlannedVm[],
  signal: AbortSignal
): Promise<void> {
  const until = Date.now() + 30_000
  const refs = new Set(vms.map((vm) => vm.ref))
  const cancelled = new Set<string>()
  while (Date.now() < until && !signal.aborted) {
    const records = await readVms(xapi, signal)
    if (records === undefined) return
    const busy = Object.entries(records).filter(
      ([ref, r]) =>
        refs.has(ref) &&
        r.resident_on === hostRef &&
        Object.keys(r.current_operations ?? {}).length > 0
    )
    if (busy.length === 0) return
    for (const task of busy.flatMap(([, r]) => Object.keys(r.current_operations ?? {}))) {
      if (cancelled.has(task)) continue
      cancelled.add(task)
      await xapi.callWith('task.cancel', [task], { signal }).catch(() => {})
    }
    await sleep(500, signal).catch(() => {})
  }
}

async function readVms(
  xapi: ShutdownXapi,
  signal: AbortSignal
): Promise<Record<string, ShutdownVmRecord> | undefined> {
  try {
    return await xapi.callWith<Record<string, ShutdownVmRecord>>('VM.get_all_records', [], {
      signal,
    })
  } catch {
    return undefined
  }
}

function formatDescription(description: readonly string[] | string): string {
  if (typeof description === 'string') return description
  const [code = 'UNKNOWN', ...params] = description
  return `${code}(${params.join(', ')})`
}
