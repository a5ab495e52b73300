/** XAPI refuses a 4th storage migration on a host with `TOO_MANY_STORAGE_MIGRATES`. */
export const STORAGE_MIGRATES_PER_HOST = 3

/**
 * Counting semaphores keyed by host ref: at most `limit` holders per host. `acquire` takes a
 * slot on every host given (all or nothing, in a fixed order so two callers cannot deadlock).
 */
export class HostSlots {
  readonly limit: number
  readonly #used = new Map<string, number>()
  readonly #waiters: Array<() => void> = []

  constructor(limit = STORAGE_MIGRATES_PER_HOST) {
    this.limit = limit
  }

  /** Resolves with a release function once every host of `hosts` has a free slot. */
  async acquire(hosts: readonly string[], signal?: AbortSignal): Promise<() => void> {
    const keys = [...new Set(hosts)].sort()
    for (;;) {
      signal?.throwIfAborted()
      if (keys.every((k) => (this.#used.get(k) ?? 0) < this.limit)) {
        for (const k of keys) this.#used.set(k, (this.#used.get(k) ?? 0) + 1)
        let released = false
        return () => {
          if (released) return
          released = true
          for (const k of keys) this.#used.set(k, (this.#used.get(k) ?? 1) - 1)
          for (const wake of this.#waiters.splice(0)) wake()
        }
      }
      await new Promise<void>((resolve, reject) => {
        const onAbort = () => reject(signal?.reason)
        this.#waiters.push(() => {
          signal?.removeEventListener('abort', onAbort)
          resolve()
        })
        signal?.addEventListener('abort', onAbort, { once: true })
      })
    }
  }

  /** Slots in use on `host`. */
  used(host: string): number {
    return this.#used.get(host) ?? 0
  }
}
