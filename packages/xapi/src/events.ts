import { isXapiError } from './errors.js'
import { normalizeRecord } from './records.js'

/** One entry of `event.from`'s `events`. */
export type XapiEvent = {
  readonly id: string
  readonly timestamp: string
  /** Lower-case class name as sent by XAPI (`vm`, `task`, ...). */
  readonly class: string
  readonly operation: 'add' | 'mod' | 'del'
  readonly ref: string
  /** The full record after the change (absent for `del`). */
  readonly snapshot?: Record<string, unknown>
}

export type WatchEventsOptions = {
  readonly signal?: AbortSignal | undefined
  /**
   * Long-poll duration of each `event.from` call, in seconds.
   * @default 60
   */
  readonly timeoutS?: number | undefined
}

type EventCaller = {
  callWith<T>(
    method: string,
    params: unknown[],
    opts: { signal?: AbortSignal; timeoutMs?: number }
  ): Promise<T>
}

const DEFAULT_TIMEOUT_S = 60
const EMPTY_BATCH_PAUSE_MS = 1_000

/** Waits `ms`; resolves early (without throwing) when `signal` aborts. */
export function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms)
    function done() {
      clearTimeout(timer)
      signal?.removeEventListener('abort', done)
      resolve()
    }
    signal?.addEventListener('abort', done, { once: true })
  })
}

/**
 * `event.from`'s timeout is a float, and older ocaml-rpc releases reject an int where a float is
 * expected (`float_of_rpc` accepts only Float or String there), while JSON cannot mark `30` as a
 * float. Nudge integral values off the integer, as xen-api does (`60.1`).
 */
export function wireFloat(n: number): number {
  return Number.isInteger(n) ? n + 0.1 : n
}
/** Extra time given to an `event.from` call beyond its long-poll duration. */
const EVENT_MARGIN_MS = 30_000

/**
 * Iterates over `event.from(classes, token, timeoutS)`: first an `add` event per existing object,
 * then changes as they happen. Survives `SESSION_INVALID` (re-login) and `EVENTS_LOST` /
 * bad tokens (restarts from a fresh snapshot). Ends by rejecting with `signal.reason` on abort.
 */
export async function* watchEvents(
  caller: EventCaller,
  classes: readonly string[],
  opts: WatchEventsOptions = {}
): AsyncGenerator<XapiEvent, void, undefined> {
  const { signal } = opts
  const timeoutS = opts.timeoutS ?? DEFAULT_TIMEOUT_S
  if (!(timeoutS > 0) || !Number.isFinite(timeoutS))
    throw new TypeError(`Expected timeoutS > 0, got ${timeoutS}`)
  let token = ''
  for (;;) {
    signal?.throwIfAborted()
    let batch: { events?: unknown; token?: unknown }
    const started = Date.now()
    try {
      batch = await caller.callWith('event.from', [[...classes], token, wireFloat(timeoutS)], {
        ...(signal && { signal }),
        timeoutMs: timeoutS * 1000 + EVENT_MARGIN_MS,
      })
    } catch (error) {
      if (
        isXapiError(error, 'EVENTS_LOST') ||
        isXapiError(error, 'EVENT_FROM_TOKEN_PARSE_FAILURE')
      ) {
        if (token === '') throw error
        token = ''
        continue
      }
      throw error
    }
    if (typeof batch.token === 'string') token = batch.token
    if (!Array.isArray(batch.events) || batch.events.length === 0) {
      // xapi answers an empty batch only after the timeout; a server answering at once would
      // otherwise be polled in a tight loop.
      if (Date.now() - started < (timeoutS * 1000) / 2) await pause(EMPTY_BATCH_PAUSE_MS, signal)
      continue
    }
    for (const raw of batch.events as Array<Record<string, unknown>>) {
      const cls = String(raw.class ?? '')
      const snapshot = raw.snapshot
      yield {
        id: String(raw.id ?? ''),
        timestamp: String(raw.timestamp ?? ''),
        class: cls,
        operation: raw.operation as XapiEvent['operation'],
        ref: String(raw.ref ?? ''),
        ...(typeof snapshot === 'object' &&
          snapshot !== null && {
            snapshot: normalizeRecord(cls, snapshot as Record<string, unknown>),
          }),
      }
    }
  }
}
