import { XapiError, isXapiClientError, isXapiError } from './errors.js'
import { pause, wireFloat } from './events.js'
import { normalizeRecord, type TaskRecord } from './records.js'
import type { Ref } from '@xapi-ops/xapi-formats'
import { decodeXmlRpcValue } from './transport/codec.js'

/** What the watcher needs from the client. */
export type TaskCaller = {
  callWith<T>(
    method: string,
    params: unknown[],
    opts: { signal?: AbortSignal; timeoutMs?: number }
  ): Promise<T>
}

export type WatchTaskOptions = {
  readonly signal?: AbortSignal | undefined
  /** Called with the task's progress (0..1) when it moves forward. */
  readonly onProgress?: ((fraction: number) => void) | undefined
}

type Waiter = {
  readonly ref: string
  readonly onProgress: ((fraction: number) => void) | undefined
  lastProgress: number
  settle(error: unknown, value?: unknown): void
}

const EVENT_TIMEOUT_S = 30
const POLL_MIN_MS = 200
const POLL_MAX_MS = 5_000

/**
 * Waits for XAPI tasks with one shared `event.from(['task'])` loop for all waiters (falls back to
 * polling `task.get_record` where `event.from` is unavailable).
 */
export class TaskWatcher {
  readonly #caller: TaskCaller
  readonly #waiters = new Map<string, Set<Waiter>>()
  #loop: Promise<void> | undefined
  #loopAbort: AbortController | undefined
  #polling = false

  constructor(caller: TaskCaller) {
    this.#caller = caller
  }

  /** Resolves with the decoded `result` when the task succeeds; rejects with its error otherwise. */
  wait(ref: Ref<'task'>, opts: WatchTaskOptions = {}): Promise<unknown> {
    const { signal } = opts
    signal?.throwIfAborted()
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        ref,
        onProgress: opts.onProgress,
        lastProgress: -1,
        settle: (error, value) => {
          signal?.removeEventListener('abort', onAbort)
          this.#remove(waiter)
          if (error === undefined) resolve(value)
          else reject(error)
        },
      }
      const onAbort = () => waiter.settle(signal!.reason)
      signal?.addEventListener('abort', onAbort, { once: true })
      let set = this.#waiters.get(ref)
      if (!set) this.#waiters.set(ref, (set = new Set()))
      set.add(waiter)
      this.#ensureLoop()
      // The current state; later changes come from the loop (its token predates this call).
      this.#caller
        .callWith<TaskRecord>('task.get_record', [ref], { ...(signal && { signal }) })
        .then(
          (record) => this.#update(ref, record),
          (error: unknown) => {
            if (!signal?.aborted) waiter.settle(error)
          }
        )
    })
  }

  #remove(waiter: Waiter): void {
    const set = this.#waiters.get(waiter.ref)
    set?.delete(waiter)
    if (set?.size === 0) this.#waiters.delete(waiter.ref)
    if (this.#waiters.size === 0) this.#loopAbort?.abort()
  }

  #update(ref: string, raw: unknown): void {
    const set = this.#waiters.get(ref)
    if (!set || typeof raw !== 'object' || raw === null) return
    const record = normalizeRecord('task', raw as TaskRecord)
    const progress = typeof record.progress === 'number' ? record.progress : Number(record.progress)
    for (const waiter of [...set]) {
      if (Number.isFinite(progress) && progress > waiter.lastProgress && progress >= 0) {
        waiter.lastProgress = progress
        try {
          waiter.onProgress?.(Math.min(1, progress))
        } catch {
          // A throwing progress callback must not break the watcher.
        }
      }
      const outcome = taskOutcome(ref, record)
      if (outcome) waiter.settle(outcome.error, outcome.value)
    }
  }

  #ensureLoop(): void {
    if (this.#loop) return
    const ctrl = (this.#loopAbort = new AbortController())
    this.#loop = (this.#polling ? this.#poll(ctrl.signal) : this.#listen(ctrl.signal))
      .catch((error: unknown) => {
        if (!ctrl.signal.aborted) this.#failAll(error)
      })
      .finally(() => {
        this.#loop = undefined
        this.#loopAbort = undefined
        if (this.#waiters.size > 0) this.#ensureLoop()
      })
  }

  async #listen(signal: AbortSignal): Promise<void> {
    let token = ''
    let failures = 0
    while (this.#waiters.size > 0 && !signal.aborted) {
      let batch: { events?: unknown; token?: unknown }
      const started = Date.now()
      try {
        batch = await this.#caller.callWith(
          'event.from',
          [['task'], token, wireFloat(EVENT_TIMEOUT_S)],
          {
            signal,
            timeoutMs: (EVENT_TIMEOUT_S + 30) * 1000,
          }
        )
        failures = 0
      } catch (error) {
        if (signal.aborted) return
        if (
          isXapiError(error, 'EVENTS_LOST') ||
          isXapiError(error, 'EVENT_FROM_TOKEN_PARSE_FAILURE')
        ) {
          token = ''
          continue
        }
        if (
          isXapiError(error, 'MESSAGE_METHOD_UNKNOWN') ||
          isXapiError(error, 'EVENT_SUBSCRIPTION_PARSE_FAILURE')
        ) {
          this.#polling = true
          return this.#poll(signal)
        }
        if (isXapiClientError(error, 'XAPI_CLIENT_CLOSED') || ++failures > 3) throw error
        await pause(POLL_MIN_MS * 2 ** failures, signal)
        continue
      }
      if (typeof batch.token === 'string') token = batch.token
      if (!Array.isArray(batch.events) || batch.events.length === 0) {
        // An empty batch long before the timeout: a server not long-polling; do not spin.
        if (Date.now() - started < (EVENT_TIMEOUT_S * 1000) / 2)
          await pause(POLL_MAX_MS / 5, signal)
        continue
      }
      for (const event of batch.events as Array<{
        class?: string
        ref?: string
        operation?: string
        snapshot?: unknown
      }>) {
        if (event.class?.toLowerCase() !== 'task' || event.ref === undefined) continue
        if (!this.#waiters.has(event.ref)) continue
        if (event.operation === 'del') {
          this.#failRef(
            event.ref,
            new XapiError('HANDLE_INVALID', ['task', event.ref], { task: event.ref as Ref<'task'> })
          )
        } else this.#update(event.ref, event.snapshot)
      }
    }
  }

  async #poll(signal: AbortSignal): Promise<void> {
    let interval = POLL_MIN_MS
    while (this.#waiters.size > 0 && !signal.aborted) {
      await pause(interval, signal)
      interval = Math.min(POLL_MAX_MS, interval * 1.5)
      await Promise.all(
        [...this.#waiters.keys()].map((ref) =>
          this.#caller.callWith<TaskRecord>('task.get_record', [ref], { signal }).then(
            (record) => this.#update(ref, record),
            (error: unknown) => {
              if (!signal.aborted) this.#failRef(ref, error)
            }
          )
        )
      )
    }
  }

  #failRef(ref: string, error: unknown): void {
    for (const waiter of [...(this.#waiters.get(ref) ?? [])]) waiter.settle(error)
  }

  #failAll(error: unknown): void {
    for (const ref of [...this.#waiters.keys()]) this.#failRef(ref, error)
  }
}

/** The outcome of a finished task, or undefined while it runs. */
export function taskOutcome(
  ref: string,
  record: TaskRecord
): { error?: unknown; value?: unknown } | undefined {
  const task = ref as Ref<'task'>
  switch (record.status) {
    case 'success':
      return { value: decodeTaskResult(record.result) }
    case 'failure': {
      const info = Array.isArray(record.error_info) ? record.error_info : []
      return {
        error: XapiError.fromErrorDescription(
          info.length > 0 ? info : ['INTERNAL_ERROR', 'task failed without error_info'],
          {
            task,
            ...(record.name_label && { method: record.name_label }),
          }
        ),
      }
    }
    case 'cancelled': {
      const info =
        Array.isArray(record.error_info) && record.error_info.length > 0
          ? record.error_info
          : ['TASK_CANCELLED', ref]
      return { error: XapiError.fromErrorDescription(info, { task }) }
    }
    default:
      return undefined
  }
}

/** Decodes a task `result` (an XML-RPC value fragment); a bare string is returned as is. */
export function decodeTaskResult(result: unknown): unknown {
  if (typeof result !== 'string') return result
  const text = result.trim()
  if (!text.startsWith('<')) return result
  return decodeXmlRpcValue(text)
}
