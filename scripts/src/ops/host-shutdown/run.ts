import PQueue from 'p-queue'
import { evacuate, type EvacuationPlan } from './evacuate.js'
import type { HostShutdownEvent, ShutdownAction } from './events.js'
import { groupByOrder, type OrderGroup, type PlannedVm, type ShutdownPlan } from './plan.js'
import { VmShutdowns, type VmResult } from './vm-shutdown.js'
import { abortAfter, DeadlineError, type ShutdownXapi } from './xapi.js'

/** Settings of a {@link ShutdownRun} (see `HostShutdownOptions`). */
export type ShutdownRunOptions = {
  readonly cleanTimeoutMs?: number
  readonly hardFallback?: boolean
  readonly deadlineAt?: number
  readonly deadlineGraceMs?: number
  readonly concurrency?: number
}

/** The mutable state of one run: signals, the per-VM workers, the deadline sweep. */
export class ShutdownRun {
  readonly #xapi: ShutdownXapi
  readonly #hostRef: string
  readonly #options: ShutdownRunOptions
  readonly #signal: AbortSignal
  readonly #emit: (event: HostShutdownEvent) => void
  readonly #deadline: { signal: AbortSignal; clear: () => void }
  readonly #final: { signal: AbortSignal; clear: () => void }
  readonly #work: AbortSignal
  readonly #vms: VmShutdowns
  #sweep: Promise<void> | undefined
  #evacuating: Promise<unknown> | undefined
  #remaining: readonly PlannedVm[] = []

  constructor(
    xapi: ShutdownXapi,
    hostRef: string,
    options: ShutdownRunOptions,
    signal: AbortSignal,
    emit: (event: HostShutdownEvent) => void
  ) {
    this.#xapi = xapi
    this.#hostRef = hostRef
    this.#options = options
    this.#signal = signal
    this.#emit = emit
    const never = { signal: new AbortController().signal, clear: () => {} }
    const { deadlineAt } = options
    if (deadlineAt === undefined) {
      this.#deadline = never
      this.#final = never
    } else {
      const left = deadlineAt - Date.now()
      const grace = options.deadlineGraceMs ?? Math.min(30_000, Math.max(2_000, left / 10))
      this.#deadline = abortAfter(left, new DeadlineError('deadline reached'))
      this.#final = abortAfter(left + grace, new DeadlineError('deadline grace period over'))
    }
    this.#work = AbortSignal.any([signal, this.#deadline.signal])
    this.#vms = new VmShutdowns(xapi, {
      hostRef,
      emit,
      cleanTimeoutMs: options.cleanTimeoutMs ?? 60_000,
      hardFallback: options.hardFallback ?? true,
      interrupt: signal,
      work: this.#work,
      final: AbortSignal.any([signal, this.#final.signal]),
    })
    this.#deadline.signal.addEventListener('abort', () => (this.#sweep = this.#sweepAtDeadline()), {
      once: true,
    })
  }

  get deadlineReached(): boolean {
    return this.#deadline.signal.aborted
  }

  async execute(plan: ShutdownPlan, evacuation: EvacuationPlan | undefined): Promise<void> {
    let groups = plan.groups
    this.#remaining = groups.flatMap((g) => g.vms)
    if (evacuation && evacuation.targets.length > 0 && evacuation.movable.length > 0) {
      // host.evacuate refuses to move anything while one VM has no destination: like the dom0
      // program, shut those down first, then evacuate, then shut down whatever did not move.
      const blocked = new Set(evacuation.blocked.map((b) => b.vm.ref))
      await this.#runGroups(groupByOrder(this.#remaining.filter((vm) => blocked.has(vm.ref))))
      if (this.#work.aborted) return this.#finish()
      const evacuating = evacuate(this.#xapi, {
        hostRef: this.#hostRef,
        vms: this.#remaining.filter((vm) => !blocked.has(vm.ref)),
        budgetMs: evacuation.budgetMs,
        work: this.#work,
        interrupt: this.#signal,
        final: AbortSignal.any([this.#signal, this.#final.signal]),
        emit: this.#emit,
        done: (vm, result) => this.#vms.record(vm, result),
      })
      this.#evacuating = evacuating
      groups = groupByOrder(await evacuating)
    } else if (evacuation) {
      const reason = evacuation.targets.length === 0 ? 'no other enabled host' : 'nothing can move'
      this.#emit({
        kind: 'evacuate-end',
        outcome: 'skipped',
        migrated: 0,
        remaining: this.#remaining.length,
        error: reason,
      })
    }
    await this.#runGroups(groups)
    await this.#finish()
  }

  /** The results in plan order; VMs never reached are reported too. */
  results(plan: ShutdownPlan): VmResult[] {
    return plan.groups
      .flatMap((g) => g.vms)
      .map(
        (vm) =>
          this.#vms.result(vm) ?? {
            vm: vm.uuid,
            name: vm.name,
            status: this.#signal.aborted ? 'skipped' : 'failed',
            action: 'none' satisfies ShutdownAction,
            error: this.#signal.aborted ? 'interrupted before its turn' : 'not reached',
            ...(this.#signal.aborted && { errorCode: 'INTERRUPTED' }),
          }
      )
  }

  dispose(): void {
    this.#deadline.clear()
    this.#final.clear()
  }

  async #runGroups(groups: readonly OrderGroup[]): Promise<void> {
    const concurrency = this.#options.concurrency ?? 16
    for (const group of groups) {
      if (this.#work.aborted) return
      this.#emit({ kind: 'group-start', order: group.order, vms: group.vms.length })
      const queue = new PQueue({ concurrency })
      await Promise.all(group.vms.map((vm) => queue.add(() => this.#vms.shutdown(vm))))
      this.#emit({ kind: 'group-end', order: group.order })
    }
  }

  /** At the deadline: hard shutdown of every VM not started yet (in-flight ones fall back themselves). */
  async #sweepAtDeadline(): Promise<void> {
    if (this.#signal.aborted) return
    // A cancelled evacuation first finds out what moved: those VMs must not be hard-shut.
    await this.#evacuating
    if (this.#signal.aborted) return
    const left = this.#remaining.filter((vm) => !this.#vms.isStarted(vm))
    this.#emit({ kind: 'deadline', remaining: left.length })
    await Promise.all(left.map((vm) => this.#vms.hardAtDeadline(vm)))
  }

  async #finish(): Promise<void> {
    await this.#sweep
  }
}
