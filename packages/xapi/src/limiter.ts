/** A FIFO semaphore: at most `concurrency` functions run at once; waiting honours `signal`. */
export class Limiter {
  readonly #concurrency: number
  #running = 0
  readonly #queue: Array<() => void> = []

  constructor(concurrency: number) {
    this.#concurrency = concurrency
  }

  get running(): number {
    return this.#running
  }

  get waiting(): number {
    return this.#queue.length
  }

  async run<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (this.#running >= this.#concurrency) await this.#wait(signal)
    else this.#running++
    try {
      return await fn()
    } finally {
      const next = this.#queue.shift()
      if (next) next()
      else this.#running--
    }
  }

  #wait(signal: AbortSignal | undefined): Promise<void> {
    signal?.throwIfAborted()
    return new Promise((resolve, reject) => {
      const start = () => {
        signal?.removeEventListener('abort', onAbort)
        resolve() // the slot is handed over: #running is unchanged
      }
      const onAbort = () => {
        const i = this.#queue.indexOf(start)
        if (i >= 0) this.#queue.splice(i, 1)
        reject(signal!.reason)
      }
      this.#queue.push(start)
      signal?.addEventListener('abort', onAbort, { once: true })
    })
  }
}
