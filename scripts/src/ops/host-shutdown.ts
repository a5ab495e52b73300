import { CliError } from '../lib/errors.js'
import { EXIT_CODES } from '../lib/exit-codes.js'
import type { RunReport } from '../lib/results.js'
import { planEvacuation, type EvacuationPlan } from './host-shutdown/evacuate.js'
import { ShutdownRun } from './host-shutdown/run.js'
import type { HostShutdownEvent, PlanEntry } from './host-shutdown/events.js'
import {
  planShutdown,
  resolveHost,
  type PlannedVm,
  type ShutdownHostRecord,
  type ShutdownPlan,
  type ShutdownVmRecord,
} from './host-shutdown/plan.js'
import type { VmResult } from './host-shutdown/vm-shutdown.js'
import type { ShutdownXapi } from './host-shutdown/xapi.js'

/** Options of {@link shutdownHost}. */
export type HostShutdownOptions = {
  /** uuid or name_label; may be omitted when the pool has a single host. */
  readonly host?: string
  /** How long a clean shutdown may take before it is cancelled. @default 60_000 */
  readonly cleanTimeoutMs?: number
  /** Hard-shut VMs whose clean shutdown failed or timed out. @default true */
  readonly hardFallback?: boolean
  /** Live-migrate what can move to other enabled hosts first (`host.evacuate`). @default false */
  readonly evacuate?: boolean
  /** Overrides the evacuation budget (default: max(240 s, used memory × 8 / 1000 MiB/s)). */
  readonly evacuateTimeoutMs?: number
  /**
   * Epoch ms after which pending work is cancelled and the remaining VMs are hard-shut down
   * (`--deadline`, counted by the caller from the start of the run).
   */
  readonly deadlineAt?: number
  /** How long the hard shutdowns issued at the deadline may take. @default min(30 s, max(2 s, deadline / 10)) */
  readonly deadlineGraceMs?: number
  /** VMs shut down at once within an order group. @default 16 */
  readonly concurrency?: number
  /** Plan only: read-only calls, nothing changed. @default false */
  readonly dryRun?: boolean
}

/** What {@link shutdownHost} takes besides the client and options. */
export type HostShutdownContext = {
  /** Aborting it (SIGINT/SIGTERM) cancels in-flight tasks; the report is still returned. */
  readonly signal?: AbortSignal
  readonly emit?: (event: HostShutdownEvent) => void
}

/** {@link RunReport} of host-shutdown. */
export type HostShutdownReport = RunReport & {
  readonly results: readonly VmResult[]
  readonly summary: {
    readonly host: string
    readonly hostName: string
    readonly dryRun: boolean
    readonly deadlineReached: boolean
    readonly durationMs: number
  }
}

/**
 * Shuts down the VMs of a host the way the dom0 shutdown program did, with ordering, a bound on
 * the total time and a report (issue 5):
 * 1. picks the host's resident VMs that are Running or Paused and not control domains; VMs with
 *    `other_config:auto_poweroff=false` are reported as skipped;
 * 2. with `evacuate`, shuts down what cannot move, then `host.evacuate`s within a time budget;
 * 3. shuts the rest down by `order` groups, highest first, `concurrency` at a time: clean
 *    shutdown with a timeout, then hard shutdown (Paused VMs: hard at once). A group starts
 *    once every task of the previous one has ended: XAPI sleeps `shutdown_delay` inside
 *    `VM.clean_shutdown`/`hard_shutdown` (as `VM_appliance.shutdown` relies on), so the
 *    delay separates the groups without a second sleep here;
 * 4. at `deadlineAt`, cancels pending work and hard-shuts the remaining VMs down.
 *
 * Throws (before changing anything) on an unknown host or a failed read; once it has started
 * changing things it never throws: failures are per VM in the results.
 */
export async function shutdownHost(
  xapi: ShutdownXapi,
  options: HostShutdownOptions,
  context: HostShutdownContext = {}
): Promise<HostShutdownReport> {
  const started = Date.now()
  const signal = context.signal ?? new AbortController().signal
  const emit = context.emit ?? (() => {})
  // Reads change nothing: past the deadline they are abandoned and the run ends with exit 2.
  const readSignal =
    options.deadlineAt === undefined
      ? signal
      : AbortSignal.any([signal, AbortSignal.timeout(Math.max(0, options.deadlineAt - Date.now()))])
  let reads: Awaited<ReturnType<typeof readState>>
  try {
    reads = await readState(xapi, options, readSignal, emit)
  } catch (error) {
    if (readSignal.aborted && !signal.aborted) {
      throw new CliError('deadline reached before anything was changed', {
        exitCode: EXIT_CODES.USAGE,
        cause: error,
      })
    }
    throw error
  }
  const { host, plan, evacuation } = reads
  const planned = planEvent(host.record.uuid, plan, evacuation, options.dryRun === true)
  emit(planned)

  const summary = (deadlineReached: boolean) => ({
    host: host.record.uuid,
    hostName: host.record.name_label,
    dryRun: options.dryRun === true,
    deadlineReached,
    durationMs: Date.now() - started,
  })
  const skipped = plan.optedOut.map((vm): VmResult => ({
    vm: vm.uuid,
    name: vm.name,
    status: 'skipped',
    action: 'none',
    error: 'other_config:auto_poweroff=false (power-off managed elsewhere)',
  }))
  if (options.dryRun) {
    const results = planned.groups.flatMap((g) =>
      g.vms.map((vm): VmResult => ({
        vm: vm.vm,
        name: vm.name,
        status: 'skipped',
        action: 'none',
        error: `dry run: would ${vm.action}`,
      }))
    )
    return { results: [...results, ...skipped], summary: summary(false) }
  }

  const run = new ShutdownRun(xapi, host.ref, options, signal, emit)
  try {
    await run.execute(plan, evacuation)
  } finally {
    run.dispose()
  }
  for (const result of skipped) emit({ kind: 'vm-done', ...result })
  return {
    results: [...run.results(plan), ...skipped],
    summary: summary(run.deadlineReached),
    interrupted: signal.aborted,
  }
}

/** The read-only part: the host, its VMs, the plan and, with `evacuate`, the evacuation plan. */
async function readState(
  xapi: ShutdownXapi,
  options: HostShutdownOptions,
  signal: AbortSignal,
  emit: (event: HostShutdownEvent) => void
) {
  const hosts = await xapi.callWith<Record<string, ShutdownHostRecord>>(
    'host.get_all_records',
    [],
    {
      signal,
    }
  )
  const host = resolveHost(hosts, options.host)
  emit({ kind: 'host', host: host.record.uuid, name: host.record.name_label })
  const vms = await xapi.callWith<Record<string, ShutdownVmRecord>>('VM.get_all_records', [], {
    signal,
  })
  const plan = planShutdown(vms, host.ref)
  const evacuation = options.evacuate
    ? await planEvacuation(xapi, {
        hosts,
        hostRef: host.ref,
        plan,
        budgetMs: options.evacuateTimeoutMs,
        signal,
      })
    : undefined
  return { host, plan, evacuation }
}

function planEvent(
  host: string,
  plan: ShutdownPlan,
  evacuation: EvacuationPlan | undefined,
  dryRun: boolean
): Extract<HostShutdownEvent, { kind: 'plan' }> {
  const ref = (vm: PlannedVm) => ({ vm: vm.uuid, name: vm.name })
  const blocked = new Set(evacuation?.blocked.map((b) => b.vm.ref))
  const canMove = (vm: PlannedVm) =>
    evacuation !== undefined && evacuation.targets.length > 0 && !blocked.has(vm.ref)
  const entry = (vm: PlannedVm): PlanEntry => ({
    ...ref(vm),
    power_state: vm.powerState,
    action: canMove(vm)
      ? 'migrate'
      : vm.powerState === 'Running' && vm.cleanAllowed
        ? 'clean_shutdown'
        : 'hard_shutdown',
  })
  return {
    kind: 'plan',
    host,
    dryRun,
    groups: plan.groups.map((g) => ({ order: g.order, vms: g.vms.map(entry) })),
    skipped: plan.optedOut.map((vm) => ({
      ...ref(vm),
      reason: 'other_config:auto_poweroff=false',
    })),
    evacuate: evacuation && {
      targets: evacuation.targets,
      budgetS: evacuation.budgetMs / 1000,
      movable: evacuation.movable.map(ref),
      blocked: evacuation.blocked.map((b) => ({ ...ref(b.vm), reason: b.reason })),
    },
  }
}
