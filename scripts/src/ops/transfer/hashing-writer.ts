import { writevSync } from 'node:fs'
import { open, type FileHandle } from 'node:fs/promises'
import { Worker } from 'node:worker_threads'

// The SHA-256 runs in a worker thread, on 1 MiB slots that are plain ArrayBuffers transferred back
// and forth (copying into a SharedArrayBuffer is a slow element-wise "relaxed" copy in V8).
//
// The file is written on the calling thread, synchronously, in batches of at least 1 MiB: on this
// path every other arrangement measured slower. Writes from the thread pool or from the worker
// cost a thread hop per batch and, running in parallel with the socket reads, make both contend
// in the kernel's page allocator (about 60 % more system time per byte, and 15-25 % less
// throughput). A page-cache write of 1 MiB takes well under a millisecond; when the kernel
// throttles a writer with too many dirty pages, pausing the event loop is the back-pressure
// wanted anyway: the socket is not read meanwhile.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads')
const hash = require('node:crypto').createHash('sha256')
parentPort.on('message', (m) => {
  if (m === 'end') return parentPort.postMessage({ digest: hash.digest('hex') })
  hash.update(new Uint8Array(m.buf, 0, m.len))
  parentPort.postMessage({ buf: m.buf }, [m.buf])
})
`

const SLOT_BYTES = 1024 * 1024
const SLOTS = 8
const BATCH_BYTES = 1024 * 1024
/**
 * With `fsync`, an fdatasync is started in the thread pool each time this much more was written:
 * the disk writes while the network transfers, instead of all at the end, and the dirty pages a
 * transfer leaves in the host's memory stay bounded.
 */
const SYNC_EVERY_BYTES = 64 * 1024 * 1024

type FromWorker = { buf?: ArrayBuffer; digest?: string }

/** What {@link HashingWriter.finish} resolves with. */
export type Written = { readonly bytes: number; readonly sha256: string }

/**
 * Writes bytes to a file (or only hashes them) and computes their SHA-256 (what `sha256sum`
 * prints) in a worker thread, with back-pressure: `write` returns a promise, to wait for before
 * the next write, when the worker is behind. A file-system error (`ENOSPC`…) rejects that `write`
 * (or `finish`) with its `code`.
 */
export class HashingWriter {
  bytes = 0
  readonly #worker: Worker
  readonly #file: FileHandle | undefined
  readonly #fsync: boolean
  // file batch: chunks kept (not copied) until at least BATCH_BYTES are there
  #batch: Uint8Array[] = []
  #batchBytes = 0
  #written = 0
  #syncedAt = 0
  #syncing: Promise<void> | undefined
  // hash slots
  readonly #free: ArrayBuffer[] = []
  #slot: Uint8Array<ArrayBuffer> | undefined
  #filled = 0
  #inFlight = 0
  #failed: Error | undefined
  #wake: (() => void) | undefined
  #digest: ((hex: string) => void) | undefined
  #finishing: Promise<Written> | undefined
  #closed: Promise<void> | undefined

  /** `path` is created or truncated; without it the bytes are only hashed. */
  static async create(path?: string, options: { fsync?: boolean } = {}): Promise<HashingWriter> {
    const file = path === undefined ? undefined : await open(path, 'w', 0o644)
    return new HashingWriter(file, options.fsync ?? false)
  }

  private constructor(file: FileHandle | undefined, fsync: boolean) {
    this.#file = file
    this.#fsync = fsync
    for (let i = 0; i < SLOTS; i++) this.#free.push(new ArrayBuffer(SLOT_BYTES))
    this.#worker = new Worker(WORKER_SOURCE, { eval: true })
    this.#worker.on('message', (m: FromWorker) => this.#onMessage(m))
    this.#worker.on('error', (error) => this.#fail(error))
    this.#worker.on('exit', () => this.#fail(new Error('the hashing worker stopped')))
    // Held (ref'd) only while it owes an answer: an idle writer never keeps the process alive.
    this.#worker.unref()
  }

  #onMessage(m: FromWorker): void {
    if (m.buf) {
      this.#free.push(m.buf)
      if (--this.#inFlight === 0 && this.#digest === undefined) this.#worker.unref()
      this.#wake?.()
    } else if (m.digest !== undefined) {
      this.#digest?.(m.digest)
    }
  }

  #fail(error: Error): void {
    this.#failed ??= error
    this.#wake?.()
  }

  /**
   * Takes `chunk`: kept until it is written (do not reuse its memory before the next `write`
   * returns or `finish` resolves). Returns a promise to wait for when the worker is behind.
   */
  write(chunk: Uint8Array): Promise<void> | undefined {
    if (this.#failed) return Promise.reject(this.#failed)
    if (this.#file) {
      this.#batch.push(chunk)
      this.#batchBytes += chunk.length
      if (this.#batchBytes >= BATCH_BYTES) {
        try {
          this.#flushBatch()
        } catch (error) {
          this.#fail(error as Error)
          return Promise.reject(error as Error)
        }
      }
    }
    return this.#hash(chunk)
  }

  #flushBatch(): void {
    const file = this.#file
    if (!file || this.#batchBytes === 0) return
    let buffers = this.#batch
    let left = this.#batchBytes
    this.#batch = []
    this.#batchBytes = 0
    while (left > 0) {
      let n = writevSync(file.fd, buffers, this.#written)
      this.#written += n
      left -= n
      if (left === 0) break
      // A short write: go on from where it stopped.
      const rest: Uint8Array[] = []
      for (const b of buffers) {
        if (n >= b.length) n -= b.length
        else {
          rest.push(n > 0 ? b.subarray(n) : b)
          n = 0
        }
      }
      buffers = rest
    }
    if (this.#fsync && !this.#syncing && this.#written - this.#syncedAt >= SYNC_EVERY_BYTES) {
      this.#syncedAt = this.#written
      this.#syncing = file
        .datasync()
        .catch((error: unknown) => this.#fail(error as Error))
        .finally(() => (this.#syncing = undefined))
    }
  }

  /** Copies `chunk` into the hash slots, handing each full slot to the worker. */
  #hash(chunk: Uint8Array): Promise<void> | undefined {
    this.bytes += chunk.length
    let offset = 0
    while (offset < chunk.length) {
      if (!this.#slot) {
        const buf = this.#free.pop()
        if (!buf) return this.#waitThen(chunk.subarray(offset))
        this.#slot = new Uint8Array(buf)
      }
      const n = Math.min(SLOT_BYTES - this.#filled, chunk.length - offset)
      this.#slot.set(chunk.subarray(offset, offset + n), this.#filled)
      this.#filled += n
      offset += n
      if (this.#filled === SLOT_BYTES) this.#send()
    }
    return undefined
  }

  async #waitThen(rest: Uint8Array): Promise<void> {
    this.bytes -= rest.length
    while (this.#free.length === 0 && !this.#failed) {
      await new Promise<void>((resolve) => (this.#wake = resolve))
      this.#wake = undefined
    }
    if (this.#failed) throw this.#failed
    await this.#hash(rest)
  }

  /** Hands the current slot (if it holds anything) to the worker. */
  #send(): void {
    const slot = this.#slot
    if (!slot || this.#filled === 0) return
    if (this.#inFlight++ === 0) this.#worker.ref()
    this.#worker.postMessage({ buf: slot.buffer, len: this.#filled }, [slot.buffer])
    this.#slot = undefined
    this.#filled = 0
  }

  /** Writes what is left (fsynced when asked), closes the file and gives the digest. */
  finish(): Promise<Written> {
    this.#finishing ??= this.#finish()
    return this.#finishing
  }

  async #finish(): Promise<Written> {
    try {
      if (this.#failed) throw this.#failed
      this.#flushBatch()
      this.#send()
      const digest = new Promise<string>((resolve, reject) => {
        this.#digest = resolve
        this.#wake = () => this.#failed && reject(this.#failed)
        this.#worker.ref()
        this.#worker.postMessage('end')
      })
      if (this.#file && this.#fsync) {
        await this.#syncing
        if (this.#failed) throw this.#failed
        await this.#file.sync()
      }
      return { bytes: this.bytes, sha256: await digest }
    } finally {
      await this.close()
    }
  }

  /** Stops the worker and closes the file (whose content is then whatever was written). */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#fail(new Error('the hashing writer was closed'))
      this.#batch = []
      await this.#syncing
      // Not awaited: the worker only hashes, nothing of the file depends on it, and a worker
      // terminated while still starting may never report its exit.
      this.#worker.unref()
      void this.#worker.terminate().catch(() => {})
      await this.#file?.close().catch(() => {})
    })()
    return this.#closed
  }
}
