import { XapiClientError, XapiTransportError, isXapiError } from '../errors.js'
import type { Ref } from '@xapi-ops/xapi-formats'
import { TransferMeter, type TransferProgress } from './progress.js'

/** The part of a client task handle a transfer uses (`client.createTask(label)`). */
export type TransferTask = {
  readonly ref: Ref<'task'>
  wait(options: { signal?: AbortSignal; onProgress?: (progress: number) => void }): Promise<unknown>
  cancel(): Promise<unknown>
  destroy(): Promise<unknown>
}

type Outcome = { ok: true; result: unknown } | { ok: false; error: unknown }

/** How long to wait for the task's verdict once the connection broke or the task was cancelled. */
export const TASK_VERDICT_GRACE_MS = 15_000
/** The same after an error status: xapi fails the task before it writes its 500/403. */
export const STATUS_VERDICT_GRACE_MS = 5_000

/** Code of the error raised by the stall watchdog. */
export const XAPI_CLIENT_STALLED = 'XAPI_CLIENT_STALLED'

/**
 * One export or import: the task's lifecycle, the stall watchdog, cancellation and the choice of
 * the error the caller sees. `signal` aborts every I/O of the transfer on the first failure.
 */
export class TransferRun {
  readonly meter: TransferMeter
  readonly task: TransferTask
  readonly #ctl = new AbortController()
  readonly #watchCtl = new AbortController()
  #outcome: Promise<Outcome> | undefined
  readonly #watchdog: NodeJS.Timeout
  readonly #stallTimeoutMs: number
  readonly #watchAfterIdleMs: number
  readonly #what: string
  readonly #endUnclaimed:
    ((status: 'cancelled' | 'failure', error: unknown) => Promise<void>) | undefined
  readonly #userSignal: AbortSignal | undefined
  #waitingOnPeer: () => boolean = () => false
  #settled = false
  #answered = false
  #claimed = false
  #graceMs = TASK_VERDICT_GRACE_MS

  constructor(
    task: TransferTask,
    options: {
      /** What is transferred, for messages (`GET https://host/export`). */
      what: string
      signal?: AbortSignal | undefined
      stallTimeoutMs: number
      totalBytes?: number | undefined
      onProgress?: ((p: TransferProgress) => void) | undefined
      /**
       * Watch the task from the start (its progress is then the only completion estimate).
       * Otherwise it is watched once bytes pause or the HTTP side is over: every progress
       * update costs an `event.from` round trip on both sides, which slows the transfer.
       */
      watchTaskFromStart: boolean
      /** Ends a task no handler took over (see `TransferClient.call`). */
      endUnclaimedTask?:
        ((status: 'cancelled' | 'failure', error: unknown) => Promise<void>) | undefined
    }
  ) {
    this.#endUnclaimed = options.endUnclaimedTask
    this.#userSignal = options.signal
    this.task = task
    this.#what = options.what
    this.#stallTimeoutMs = options.stallTimeoutMs
    this.meter = new TransferMeter({
      totalBytes: options.totalBytes,
      onProgress: options.onProgress,
      onError: (error) => this.fail(error),
    })
    this.#watchAfterIdleMs = Math.min(1_000, this.#stallTimeoutMs / 4)
    if (options.watchTaskFromStart) void this.#watch(false)
    const onAbort = () => this.fail(options.signal?.reason)
    if (options.signal?.aborted) onAbort()
    else options.signal?.addEventListener('abort', onAbort, { once: true })
    this.#ctl.signal.addEventListener(
      'abort',
      () => options.signal?.removeEventListener('abort', onAbort),
      { once: true }
    )
    const period = Math.max(10, Math.min(1_000, Math.floor(this.#stallTimeoutMs / 4)))
    this.#watchdog = setInterval(() => this.#checkStall(), period)
    this.#watchdog.unref()
  }

  /** Aborted on the first failure (user abort, stall, I/O error): every I/O listens to it. */
  get signal(): AbortSignal {
    return this.#ctl.signal
  }

  /** Tells the watchdog when the other side (our consumer, or our source) is the one to wait for. */
  setWaitingOnPeer(predicate: () => boolean): void {
    this.#waitingOnPeer = predicate
  }

  /**
   * Records that xapi answered the request: from then on its handler owns the task (it fails it,
   * or takes it over with a 200), so a failure waits for the task's verdict. Before that, xapi
   * never saw the task and it is simply destroyed.
   */
  markAnswered(status: number): void {
    // 404: no handler took the request, the task was never seen.
    this.#answered = status !== 404
    this.#claimed = status === 200
    if (status !== 200) this.#graceMs = STATUS_VERDICT_GRACE_MS
  }

  /** True once the transfer is over (its I/O is then released, not reset). */
  get over(): boolean {
    return this.#settled
  }

  /** Records the first failure and aborts the transfer's I/O. */
  fail(error: unknown): void {
    if (!this.#ctl.signal.aborted) this.#ctl.abort(error)
  }

  /** Starts watching the task (once); resolves with its outcome, never rejects. */
  #watch(late = true): Promise<Outcome> {
    if (this.#outcome) return this.#outcome
    let first = true
    this.#outcome = this.task
      .wait({
        signal: this.#watchCtl.signal,
        onProgress: (p) => {
          // The value found when watching starts late is no sign of life; later changes are.
          this.meter.setTaskProgress(p, !(first && late))
          first = false
        },
      })
      .then(
        (result): Outcome => ({ ok: true, result }),
        (error: unknown): Outcome => ({ ok: false, error })
      )
    // A task that fails (or is cancelled by someone else) while bytes still flow ends the
    // transfer with its error, even if the connection stays open.
    void this.#outcome.then((outcome) => {
      if (!outcome.ok) this.fail(outcome.error)
    })
    return this.#outcome
  }

  #checkStall(): void {
    if (this.#ctl.signal.aborted) return
    if (this.#waitingOnPeer()) return this.meter.touch()
    const idleMs = Date.now() - this.meter.lastActivity
    // Bytes paused: from now on the task's progress is what tells a stall from a slow dom0.
    if (idleMs >= this.#watchAfterIdleMs) void this.#watch()
    if (idleMs < this.#stallTimeoutMs) return
    this.fail(
      new XapiClientError(
        XAPI_CLIENT_STALLED,
        `${this.#what} stalled: no data and no task progress for ${this.#stallTimeoutMs} ms ` +
          `(${this.meter.bytes} bytes transferred)`
      )
    )
  }

  /**
   * Concludes the transfer once the HTTP side has settled (`http` resolved: every byte went
   * through; rejected: why not). Resolves with the task's result; rejects with the error the
   * caller should see. The task is cancelled when needed and always destroyed.
   */
  async conclude(http: Promise<void>): Promise<unknown> {
    try {
      try {
        await http
        this.signal.throwIfAborted()
      } catch (error) {
        this.fail(error)
        throw await this.#verdictAfterFailure(this.#ctl.signal.reason)
      }
      const outcome = await Promise.race([this.#watch(), aborted(this.signal)])
      if (outcome === undefined) throw await this.#verdictAfterFailure(this.signal.reason)
      if (!outcome.ok) throw outcome.error
      this.meter.complete()
      return outcome.result
    } finally {
      await this.#dispose()
    }
  }

  /** Concludes a transfer that failed before its body: always rejects (see `conclude`). */
  async abandon(error: unknown): Promise<never> {
    await this.conclude(Promise.reject(error))
    throw error
  }

  async #verdictAfterFailure(error: unknown): Promise<unknown> {
    if (!this.#answered) {
      // No handler took the task over: it stays pending (and a destroy only marks it) unless we
      // end it ourselves, as xe does when it fails before the handler set the progress.
      const aborted = this.#userSignal?.aborted === true && error === this.#userSignal.reason
      await this.#endUnclaimed?.(aborted ? 'cancelled' : 'failure', error).catch(() => {})
      return error
    }
    if (isTransportFailure(error) || !this.#claimed) {
      // The connection only tells "closed" (or xapi answered an error status): the task says why
      // (e.g. VM_BAD_POWER_STATE, an import error). Wait for it before blaming the network.
      const outcome = await this.#verdict()
      if (outcome !== undefined && !outcome.ok) return outcome.error
      if (!this.#claimed) {
        // An error status from something that never ran xapi's handler (a proxy): no worker will
        // end the task, so there is nothing to cancel either.
        if (outcome === undefined) await this.#endUnclaimed?.('failure', error).catch(() => {})
        return error
      }
    }
    await this.task.cancel().catch(() => {})
    await this.#verdict()
    return error
  }

  async #verdict(): Promise<Outcome | undefined> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<undefined>((resolve) => {
      timer = setTimeout(resolve, this.#graceMs, undefined)
    })
    try {
      return await Promise.race([this.#watch(), timeout])
    } finally {
      clearTimeout(timer)
    }
  }

  async #dispose(): Promise<void> {
    if (this.#settled) return
    this.#settled = true
    clearInterval(this.#watchdog)
    this.fail(new XapiClientError('XAPI_CLIENT_CLOSED', `${this.#what} is over`))
    this.#watchCtl.abort()
    await this.task.destroy().catch(() => {})
  }
}

/** Errors that only say "the connection broke": the task's own error is more telling. */
export function isTransportFailure(error: unknown): boolean {
  if (error instanceof XapiTransportError) return true
  if (isXapiError(error, 'IMPORT_ERROR_PREMATURE_EOF')) return true
  const code = (error as { code?: unknown } | null)?.code
  return (
    code === 'ECONNRESET' ||
    code === 'EPIPE' ||
    code === 'ERR_STREAM_PREMATURE_CLOSE' ||
    code === 'IMPORT_ERROR_PREMATURE_EOF'
  )
}

function aborted(signal: AbortSignal): Promise<undefined> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve(undefined)
    else signal.addEventListener('abort', () => resolve(undefined), { once: true })
  })
}
