/**
 * Resolves after `ms`, or rejects with `signal.reason` itself when it aborts first (node's
 * `timers/promises` would reject with an AbortError, hiding why: interrupt, deadline…).
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  signal?.throwIfAborted()
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer)
      reject(signal?.reason)
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}
