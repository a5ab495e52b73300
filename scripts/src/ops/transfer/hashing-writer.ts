import { open, type FileHandle } from 'node:fs/promises'
import { Worker } from 'node:worker_threads'

// One worker thread per file: it computes the SHA-256 and hands each slot to the thread pool for a
// positional write, so hashing and page-cache copies run in parallel, off the main thread that
// reads the socket and replays xapi's importer. Slots are plain ArrayBuffers transferred back and
// forth (a SharedArrayBuffer would make every copy into it a slow element-wise "relaxed" copy):
// the only copy on the main thread is socket chunk → slot, and memory stays flat.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads')
const fs = require('node:fs')
const hash = require('node:crypto').createHash('sha256')
const fd = workerData.fd
let pending = 0
let ending = false
let failed = false
// One write at a time: concurrent writes to one file only contend for its inode lock.
const queue = []
function writeAll(view, pos, done) {
  let off = 0
  const next = () => fs.write(fd, view, off, view.length - off, pos + off, (error, n) => {
    if (error) return done(error)
    off += n
    off < view.length ? next() : done(null)
  })
  next()
}
function pump() {
  const m = queue[0]
  if (!m) return
  writeAll(new Uint8Array(m.buf, 0, m.len), m.pos, (error) => {
    queue.shift()
    pending--
    if (error) return fail(error)
    parentPort.postMessage({ buf: m.buf }, [m.buf])
    pump()
    maybeEnd()
  })
}
function fail(error) {
  failed = true
  parentPort.postMessage({ error: { message: error.message, code: error.code, syscall: error.syscall } })
}
function maybeEnd() {
  if (!ending || pending > 0 || failed) return
  const digest = hash.digest('hex')
  if (fd < 0 || !workerData.fsync) return parentPort.postMessage({ digest })
  fs.fsync(fd, (error) => (error ? fail(error) : parentPort.postMessage({ digest })))
}
parentPort.on('message', (m) => {
  if (m === 'end') { ending = true; return maybeEnd() }
  if (failed) return
  const view = new Uint8Array(m.buf, 0, m.len)
  if (fd < 0) {
    hash.update(view)
    return parentPort.postMessage({ buf: m.buf }, [m.buf])
  }
  pending++
  if (queue.push(m) === 1) pump()
  // Hashed while the thread pool copies the same (or earlier) bytes into the page cache.
  hash.update(view)
})
`

const SLOT_BYTES = 1024 * 1024
const SLOTS = 8

type FromWorker = {
  buf?: ArrayBuffer
  digest?: string
  error?: { message: string; code?: string; syscall?: string }
}

/** What {@link HashingWriter.finish} resolves with. */
export type Written = { readonly bytes: number; readonly sha256: string }

/**
 * Writes bytes to a new file (or only hashes them) and computes their SHA-256 (what `sha256sum`
 * prints) in a worker thread, with back-pressure: `write` returns a promise when every slot is
 * taken. File-system errors (`ENOSPC`…) reject the next `write` or `finish` with their `code`.
 */
export class HashingWriter {
  bytes = 0
  readonly #worker: Worker
  readonly #file: FileHandle | undefined
  readonly #free: ArrayBuffer[] = []
  #slot: Uint8Array<ArrayBuffer> | undefined
  #filled = 0
  /** File position of the current slot's first byte. */
  #pos = 0
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
    for (let i = 0; i < SLOTS; i++) this.#free.push(new ArrayBuffer(SLOT_BYTES))
    this.#worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { fd: file?.fd ?? -1, fsync },
    })
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
    } else if (m.error) {
      const error = Object.assign(new Error(`${m.error.syscall ?? 'write'}: ${m.error.message}`), {
        code: m.error.code,
      })
      this.#fail(error)
    }
  }

  #fail(error: Error): void {
    this.#failed ??= error
    this.#wake?.()
  }

  /**
   * Takes `chunk` (copied: the caller may reuse it). Returns a promise to wait for when the
   * worker is behind, else undefined.
   */
  write(chunk: Uint8Array): Promise<void> | undefined {
    if (this.#failed) return Promise.reject(this.#failed)
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
    await this.write(rest)
  }

  /** Hands the current slot (if it holds anything) to the worker. */
  #send(): void {
    const slot = this.#slot
    if (!slot || this.#filled === 0) return
    if (this.#inFlight++ === 0) this.#worker.ref()
    this.#worker.postMessage({ buf: slot.buffer, len: this.#filled, pos: this.#pos }, [slot.buffer])
    this.#pos += this.#filled
    this.#slot = undefined
    this.#filled = 0
  }

  /** Waits for every byte to be written (and fsynced when asked), closes the file, returns the digest. */
  finish(): Promise<Written> {
    this.#finishing ??= this.#finish()
    return this.#finishing
  }

  async #finish(): Promise<Written> {
    try {
      if (this.#failed) throw this.#failed
      this.#send()
      const digest = await new Promise<string>((resolve, reject) => {
        this.#digest = resolve
        this.#wake = () => this.#failed && reject(this.#failed)
        this.#worker.ref()
        this.#worker.postMessage('end')
      })
      return { bytes: this.bytes, sha256: digest }
    } finally {
      await this.close()
    }
  }

  /**
   * Stops the worker and closes the file (its content is then undefined). Writes already handed to
   * the thread pool complete before the descriptor is closed, so it can never land in another file.
   */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#fail(new Error('the hashing writer was closed'))
      await this.#worker.terminate().catch(() => {})
      await this.#file?.close().catch(() => {})
    })()
    return this.#closed
  }
}
