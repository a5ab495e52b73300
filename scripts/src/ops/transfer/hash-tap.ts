import { Transform, type TransformCallback } from 'node:stream'
import { Worker } from 'node:worker_threads'

// The SHA-256 runs in a worker thread: on the main thread it would share one core with the
// socket, the in-flight XVA verification and the file writes of every concurrent transfer.
// Data goes through a fixed ring of shared slots, so memory stays flat whatever the size.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads')
const hash = require('node:crypto').createHash('sha256')
const ring = new Uint8Array(workerData.ring)
const slot = workerData.slot
parentPort.on('message', (m) => {
  if (m === 'end') return parentPort.postMessage({ digest: hash.digest('hex') })
  hash.update(ring.subarray(m.slot * slot, m.slot * slot + m.length))
  parentPort.postMessage({ done: 1 })
})
`

const SLOT_BYTES = 1024 * 1024
const SLOTS = 8

/**
 * A pass-through that counts bytes and computes their SHA-256 (what `sha256sum` prints) in a
 * worker thread, with back-pressure. Call {@link HashTap.digest} once after the end; the worker
 * stops after the digest or when the tap is destroyed.
 */
export class HashTap extends Transform {
  bytes = 0
  readonly #worker: Worker
  readonly #ring = new SharedArrayBuffer(SLOT_BYTES * SLOTS)
  readonly #view = new Uint8Array(this.#ring)
  /** The slot being filled, and how many bytes it holds. */
  #next = 0
  #filled = 0
  #inFlight = 0
  /** The digest was asked for: the worker owes an answer. */
  #ending = false
  /** The rest of a chunk waiting for a free slot, and the callback to call once it is queued. */
  #waiting: { chunk: Buffer; callback: TransformCallback } | undefined
  readonly #digest: Promise<string>
  #failed: Error | undefined

  constructor() {
    super({ highWaterMark: 1024 * 1024 })
    this.#worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { ring: this.#ring, slot: SLOT_BYTES },
    })
    let resolveDigest!: (hex: string) => void
    let rejectDigest!: (error: Error) => void
    this.#digest = new Promise((resolve, reject) => {
      resolveDigest = resolve
      rejectDigest = reject
    })
    this.#digest.catch(() => {})
    this.#worker.on('message', (m: { done?: number; digest?: string }) => {
      if (m.digest !== undefined) {
        resolveDigest(m.digest)
        void this.#worker.terminate()
        return
      }
      if (--this.#inFlight === 0 && !this.#ending) this.#worker.unref()
      const waiting = this.#waiting
      if (waiting) {
        this.#waiting = undefined
        this.#queue(waiting.chunk, waiting.callback)
      }
    })
    this.#worker.on('error', (error) => {
      this.#failed = error
      rejectDigest(error)
      this.destroy(error)
    })
    // Held (ref'd) only while it owes an answer: an idle tap never keeps the process alive.
    this.#worker.unref()
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.#failed) return callback(this.#failed)
    this.bytes += chunk.length
    this.push(chunk)
    this.#queue(chunk, callback)
  }

  /**
   * Copies `chunk` into the current slot, handing each slot to the worker once full (one message
   * per MiB, not per socket read); waits for the worker when every slot is taken.
   */
  #queue(chunk: Buffer, callback: TransformCallback): void {
    let offset = 0
    while (offset < chunk.length) {
      if (this.#inFlight === SLOTS) {
        this.#waiting = { chunk: chunk.subarray(offset), callback }
        return
      }
      const length = Math.min(SLOT_BYTES - this.#filled, chunk.length - offset)
      this.#view.set(
        chunk.subarray(offset, offset + length),
        this.#next * SLOT_BYTES + this.#filled
      )
      this.#filled += length
      offset += length
      if (this.#filled === SLOT_BYTES) this.#send()
    }
    callback()
  }

  /** Hands the current slot (if it holds anything) to the worker. */
  #send(): void {
    if (this.#filled === 0) return
    if (this.#inFlight === 0) this.#worker.ref()
    this.#worker.postMessage({ slot: this.#next, length: this.#filled })
    this.#next = (this.#next + 1) % SLOTS
    this.#filled = 0
    this.#inFlight++
  }

  override _flush(callback: TransformCallback): void {
    // A free slot is not needed: the current one is never in flight.
    this.#send()
    this.#ending = true
    this.#worker.ref()
    this.#worker.postMessage('end')
    callback()
  }

  override _destroy(error: Error | null, callback: (error: Error | null) => void): void {
    this.#waiting = undefined
    // After the end, the worker stops by itself once it has sent the digest.
    if (!this.writableFinished) void this.#worker.terminate()
    callback(error)
  }

  /** The hex digest of every byte that went through, once the stream has ended. */
  digest(): Promise<string> {
    return this.#digest
  }
}
