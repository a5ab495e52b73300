/** Progress of an export or import, as passed to `onProgress`. */
export type TransferProgress = {
  /** Bytes on the wire so far (compressed bytes when the stream is compressed). */
  readonly bytes: number
  /** Expected total bytes, when known (an import with `length`, a metadata export). */
  readonly totalBytes?: number
  /**
   * Completion in [0, 1], monotonic, 1 at the end: `bytes / totalBytes` when the total is known,
   * else the task's progress (xapi counts disk MiB) or the verified share of the disks, whichever
   * is ahead; absent until one is known.
   */
  readonly fraction?: number
  /** Recent throughput, averaged over the last few seconds. */
  readonly rateBytesPerSec: number
  /** The XAPI task's own `progress` (0..1), once the task is watched (see `TransferRun`). */
  readonly taskProgress?: number
}

const RATE_WINDOW_MS = 5_000
const EMIT_INTERVAL_MS = 200

/**
 * Counts bytes and task progress, remembers the last sign of life (for the stall watchdog) and
 * emits throttled `TransferProgress` snapshots.
 */
export class TransferMeter {
  #totalBytes: number | undefined
  #bytes = 0
  #taskProgress: number | undefined
  #fraction: number | undefined
  #lastActivity = Date.now()
  #lastEmit = 0
  #samples: Array<[time: number, bytes: number]> = [[Date.now(), 0]]
  #onProgress: ((p: TransferProgress) => void) | undefined
  #onError: (error: unknown) => void
  #fractionSource: (() => number | undefined) | undefined

  constructor(options: {
    totalBytes?: number | undefined
    onProgress?: ((p: TransferProgress) => void) | undefined
    /** Receives what `onProgress` throws. */
    onError: (error: unknown) => void
  }) {
    this.#totalBytes = options.totalBytes
    this.#onProgress = options.onProgress
    this.#onError = options.onError
  }

  get totalBytes(): number | undefined {
    return this.#totalBytes
  }

  /** Sets the expected total once known (e.g. from `Content-Length`). */
  setTotalBytes(total: number): void {
    if (Number.isSafeInteger(total) && total >= 0) this.#totalBytes = total
  }

  /** Another estimate of completion (e.g. disk positions verified), used with the task's. */
  setFractionSource(source: () => number | undefined): void {
    this.#fractionSource = source
  }

  get bytes(): number {
    return this.#bytes
  }

  /** When bytes or task progress last moved (or `touch()` was called), in `Date.now()` time. */
  get lastActivity(): number {
    return this.#lastActivity
  }

  addBytes(n: number): void {
    this.#bytes += n
    this.#lastActivity = Date.now()
    // The last byte of a known total is always reported (the task may take a while after it).
    if (this.#bytes === this.#totalBytes) this.#emit(this.#lastActivity)
    else this.#maybeEmit()
  }

  /** Records the task's progress; a change counts as a sign of life unless told otherwise. */
  setTaskProgress(progress: number, life = true): void {
    if (!Number.isFinite(progress) || progress < 0) return
    if (progress === this.#taskProgress) return
    this.#taskProgress = Math.min(progress, 1)
    if (life) this.#lastActivity = Date.now()
    this.#maybeEmit()
  }

  /** Counts as life while the other side (our consumer or our source) is the one to wait for. */
  touch(): void {
    this.#lastActivity = Date.now()
  }

  /** Emits the final snapshot (fraction 1). */
  complete(): void {
    this.#fraction = 1
    this.#emit(Date.now())
  }

  snapshot(now = Date.now()): TransferProgress {
    const fraction = this.#computeFraction()
    const p: {
      bytes: number
      totalBytes?: number
      fraction?: number
      rateBytesPerSec: number
      taskProgress?: number
    } = { bytes: this.#bytes, rateBytesPerSec: this.#rate(now) }
    if (this.#totalBytes !== undefined) p.totalBytes = this.#totalBytes
    if (fraction !== undefined) p.fraction = fraction
    if (this.#taskProgress !== undefined) p.taskProgress = this.#taskProgress
    return p
  }

  #computeFraction(): number | undefined {
    let f: number | undefined
    if (this.#totalBytes !== undefined) {
      f = this.#totalBytes > 0 ? Math.min(this.#bytes / this.#totalBytes, 1) : 0
    } else {
      const other = this.#fractionSource?.()
      if (this.#taskProgress !== undefined || other !== undefined) {
        f = Math.min(Math.max(this.#taskProgress ?? 0, other ?? 0), 1)
      }
    }
    if (f === undefined) return this.#fraction
    this.#fraction = Math.max(this.#fraction ?? 0, f)
    return this.#fraction
  }

  #rate(now: number): number {
    const samples = this.#samples
    const last = samples[samples.length - 1]
    if (last === undefined || now - last[0] >= EMIT_INTERVAL_MS / 2)
      samples.push([now, this.#bytes])
    while (samples.length > 2 && now - (samples[1]?.[0] ?? now) >= RATE_WINDOW_MS) samples.shift()
    const first = samples[0]
    if (first === undefined) return 0
    const elapsedMs = now - first[0]
    return elapsedMs > 0 ? ((this.#bytes - first[1]) * 1000) / elapsedMs : 0
  }

  #maybeEmit(): void {
    const now = Date.now()
    if (now - this.#lastEmit >= EMIT_INTERVAL_MS) this.#emit(now)
  }

  #emit(now: number): void {
    this.#lastEmit = now
    if (this.#onProgress === undefined) return
    const snapshot = this.snapshot(now)
    try {
      this.#onProgress(snapshot)
    } catch (error) {
      this.#onError(error)
    }
  }
}
