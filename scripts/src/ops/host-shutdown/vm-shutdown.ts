import { describeError } from '../../lib/errors.js'
import { failureCode, type ItemResult } from '../../lib/results.js'
import type { HostShutdownEvent, ShutdownAction } from './events.js'
import type { PlannedVm, ShutdownVmRecord } from './plan.js'
import { abortAfter, CleanTimeoutError, type ShutdownXapi } from './xapi.js'

/** The result of one VM, as printed in the final line (`vm` is the uuid). */
export type VmResult = ItemResult & {
  readonly vm: string
  readonly name: string
  readonly action: ShutdownAction
}

/** Outcome of one VM without its identity. */
export type VmOutcome = Pick<VmResult, 'status' | 'action' | 'error' | 'errorCode'>

/** Settings of {@link VmShutdowns}. */
export type VmShutdownSettings = {
  readonly hostRef: string
  readonly emit: (event: HostShutdownEvent) => void
  readonly cleanTimeoutMs: number
  readonly hardFallback: boolean
  /** SIGINT/SIGTERM: cancel everything, start nothing. */
  readonly interrupt: AbortSignal
  /** Aborted by an interrupt or the deadline: no new clean shutdown, cancel pending ones. */
  readonly work: AbortSignal
  /** Bounds hard shutdowns: an interrupt or the end of the deadline's grace period. */
  readonly final: AbortSignal
}

/**
 * Shuts VMs down one at a time (callers run several at once): clean shutdown where allowed with
 * `cleanTimeoutMs`, then hard shutdown unless `hardFallback` is off; Paused VMs hard at once.
 * Keeps each VM's result and emits `vm-action`/`vm-done`.
 */
export class VmShutdowns {
  readonly #xapi: ShutdownXapi
  readonly #s: VmShutdownSettings
  readonly #started = new Set<string>()
  readonly #results = new Map<string, VmResult>()

  constructor(xapi: ShutdownXapi, settings: VmShutdownSettings) {
    this.#xapi = xapi
    this.#s = settings
  }

  /** Whether the VM has been taken up (by a group, the evacuation or the deadline sweep). */
  isStarted(vm: PlannedVm): boolean {
    return this.#started.has(vm.ref) || this.#results.has(vm.ref)
  }

  result(vm: PlannedVm): VmResult | undefined {
    return this.#results.get(vm.ref)
  }

  /** Records a VM's final result and reports it. */
  record(vm: PlannedVm, outcome: VmOutcome): void {
    const result: VmResult = { vm: vm.uuid, name: vm.name, ...outcome }
    if (result.error === undefined) delete (result as { error?: string }).error
    this.#results.set(vm.ref, result)
    this.#s.emit({ kind: 'vm-done', ...result })
  }

  /** The normal path, run by an order group's queue. */
  async shutdown(vm: PlannedVm): Promise<void> {
    // Queued VMs reached after the deadline are left to the deadline sweep.
    if (this.#s.work.aborted || this.isStarted(vm)) return
    this.#started.add(vm.ref)
    if (vm.powerState === 'Paused')
      return this.#hard(vm, 'paused: clean shutdown needs a running guest')
    if (!vm.cleanAllowed) {
      const reason = 'clean_shutdown not in allowed_operations'
      if (!this.#s.hardFallback)
        return this.record(vm, {
          status: 'failed',
          action: 'none',
          error: reason,
          errorCode: 'OPERATION_NOT_ALLOWED',
        })
      return this.#hard(vm, reason)
    }
    return this.#clean(vm)
  }

  /** The deadline sweep: hard shutdown of a VM whose turn never came. */
  async hardAtDeadline(vm: PlannedVm): Promise<void> {
    if (this.isStarted(vm)) return
    this.#started.add(vm.ref)
    const state = await this.#state(vm)
    if (state !== undefined) {
      if (state.power_state === 'Halted') return this.record(vm, { status: 'ok', action: 'none' })
      if (state.resident_on !== this.#s.hostRef && state.power_state === 'Running') {
        return this.record(vm, { status: 'ok', action: 'migrated' })
      }
      if (state.power_state === 'Suspended') {
        return this.record(vm, { status: 'skipped', action: 'none', error: 'suspended meanwhile' })
      }
    }
    const reason = 'deadline reached before its turn'
    if (!this.#s.hardFallback) {
      return this.record(vm, {
        status: 'failed',
        action: 'none',
        error: `${reason} (--no-hard-fallback)`,
        errorCode: 'DEADLINE',
      })
    }
    return this.#hard(vm, reason)
  }

  async #clean(vm: PlannedVm): Promise<void> {
    this.#s.emit({ kind: 'vm-action', vm: vm.uuid, name: vm.name, action: 'clean_shutdown' })
    const seconds = this.#s.cleanTimeoutMs / 1000
    const timeout = abortAfter(
      this.#s.cleanTimeoutMs,
      new CleanTimeoutError(`no clean shutdown within ${seconds} s`)
    )
    try {
      await this.#xapi.callAsync('VM.clean_shutdown', [vm.ref], {
        signal: AbortSignal.any([this.#s.work, timeout.signal]),
      })
      return this.record(vm, { status: 'ok', action: 'clean_shutdown' })
    } catch (error) {
      if (this.#s.interrupt.aborted) {
        return this.record(vm, {
          status: 'failed',
          action: 'clean_shutdown',
          error: 'interrupted: clean shutdown cancelled',
          errorCode: 'INTERRUPTED',
        })
      }
      const reason = timeout.signal.aborted
        ? `no clean shutdown within ${seconds} s (task cancelled)`
        : this.#s.work.aborted
          ? 'deadline reached (clean shutdown cancelled)'
          : `clean shutdown failed: ${describeError(error)}`
      // The guest may have halted as the task was cancelled, or before (VM_BAD_POWER_STATE).
      const state = await this.#state(vm)
      if (state?.power_state === 'Halted')
        return this.record(vm, { status: 'ok', action: 'clean_shutdown' })
      if (!this.#s.hardFallback) {
        const errorCode = timeout.signal.aborted
          ? 'CLEAN_TIMEOUT'
          : this.#s.work.aborted
            ? 'DEADLINE'
            : failureCode(error).errorCode
        return this.record(vm, {
          status: 'failed',
          action: 'clean_shutdown',
          error: reason,
          ...(errorCode !== undefined && { errorCode }),
        })
      }
      return this.#hard(vm, reason)
    } finally {
      timeout.clear()
    }
  }

  async #hard(vm: PlannedVm, reason: string): Promise<void> {
    this.#s.emit({ kind: 'vm-action', vm: vm.uuid, name: vm.name, action: 'hard_shutdown', reason })
    try {
      await this.#xapi.callAsync('VM.hard_shutdown', [vm.ref], { signal: this.#s.final })
      return this.record(vm, { status: 'ok', action: 'hard_shutdown' })
    } catch (error) {
      if (this.#s.interrupt.aborted) {
        return this.record(vm, {
          status: 'failed',
          action: 'hard_shutdown',
          error: 'interrupted: hard shutdown cancelled',
          errorCode: 'INTERRUPTED',
        })
      }
      const state = await this.#state(vm)
      if (state?.power_state === 'Halted')
        return this.record(vm, { status: 'ok', action: 'hard_shutdown' })
      const why = this.#s.final.aborted
        ? 'hard shutdown not done within the deadline grace period'
        : `hard shutdown failed: ${describeError(error)}`
      return this.record(vm, {
        status: 'failed',
        action: 'hard_shutdown',
        error: `${reason}; ${why}`,
        ...(this.#s.final.aborted ? { errorCode: 'DEADLINE' } : failureCode(error)),
      })
    }
  }

  /** The VM's current record, or undefined if it cannot be read. */
  async #state(vm: PlannedVm): Promise<ShutdownVmRecord | undefined> {
    try {
      return await this.#xapi.callWith<ShutdownVmRecord>('VM.get_record', [vm.ref], {
        signal: this.#s.final,
      })
    } catch {
      return undefined
    }
  }
}
