import { constants } from 'node:fs'
import { open, type FileHandle } from 'node:fs/promises'
import { Worker } from 'node:worker_threads'
import {
  CTRL,
  SLOTS,
  SLOT_BYTES,
  STATE,
  createRing,
  signal,
  waitForSignal,
  type Ring,
} from './ring.js'
import {
  WRITER_WORKER_SOURCE,
  type WriterWorkerData,
  type WriterWorkerMessage,
} from './writer-worker.js'

/** Options of {@link FileWriter.open}. */
export type FileWriterOptions<Hash extends boolean = boolean> = {
  /**
   * Compute the SHA-256 of the bytes (what `sha256sum` prints).
   * @default false
   */
  readonly sha256?: Hash
  /**
   * fsync the file before `finish` resolves.
   * @default false
   */
  readonly fsync?: boolean
  /**
   * Write around the page cache (`O_DIRECT`) where the file system allows it: the bytes go
   * straight to the device, no dirty pages are left in the host's memory and no cached data is
   * evicted for a file nobody reads soon (a backup). Falls back to buffered writes by itself.
   * @default true
   */
  readonly direct?: boolean
}

/** What {@link FileWriter.finish} resolves with. */
export type FileWritten<Hash extends boolean = boolean> = {
  readonly bytes: number
  /** Hex SHA-256 of the bytes, with `sha256: true`. */
  readonly sha256: Hash extends true ? string : undefined
}

/**
 * Writes a stream of bytes to a file (or only hashes them) from a worker thread, at the speed of
 * the device: `write` copies each chunk into a shared ring of 1 MiB slots (a memcpy, the only
 * work left on the calling thread) and the worker hashes and writes whole slots, with `O_DIRECT`
 * where it can. `write` returns a promise to wait for when the ring is full (back-pressure).
 *
 * A file-system error (`ENOSPC`…) rejects a later `write` or `finish` with its `code`.
 *
 * @example
 * const writer = await FileWriter.open('vm.xva.part', { fsync: true, sha256: true })
 * for await (const chunk of body) await writer.write(chunk)
 * const { bytes, sha256 } = await writer.finish()
 */
export class FileWriter<Hash extends boolean = false> {
  /** Bytes taken so far. */
  bytes = 0
  readonly #file: FileHandle | undefined
  readonly #ring: Ring
  readonly #worker: Worker
  readonly #result: Promise<FileWritten<Hash>>
  #exited = false
  readonly #exit: Promise<void>
  #handed = 0
  #filled = 0
  /** A `write` waits for room to copy the rest of its chunk: `reserve` must not hand it out. */
  #copying = false
  #failed: Error | undefined
  #finishing: Promise<FileWritten<Hash>> | undefined
  #closed: Promise<void> | undefined

  /** Creates or truncates `path`; without a path the bytes are only hashed. */
  static async open<Hash extends boolean = false>(
    path?: string,
    options: FileWriterOptions<Hash> = {}
  ): Promise<FileWriter<Hash>> {
    let file: FileHandle | undefined
    let direct = false
    if (path !== undefined) {
      const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC
      if ((options.direct ?? true) && constants.O_DIRECT !== undefined) {
        try {
          file = await open(path, flags | constants.O_DIRECT, 0o644)
          direct = true
        } catch (error) {
          // tmpfs (before Linux 6.6), some FUSE and network file systems: no O_DIRECT.
          if ((error as NodeJS.ErrnoException).code !== 'EINVAL') throw error
        }
      }
      file ??= await open(path, flags, 0o644)
    }
    return new FileWriter(path, file, direct, options)
  }

  private constructor(
    path: string | undefined,
    file: FileHandle | undefined,
    direct: boolean,
    options: FileWriterOptions
  ) {
    this.#file = file
    this.#ring = createRing()
    const workerData: WriterWorkerData = {
      ...this.#ring.buffers,
      fd: file?.fd ?? -1,
      path,
      direct,
      fsync: options.fsync ?? false,
      sha256: options.sha256 ?? false,
    }
    this.#worker = new Worker(WRITER_WORKER_SOURCE, { eval: true, workerData })
    // Held (ref'd) only while this side waits for it: a writer never keeps the process alive.
    this.#worker.unref()
    this.#result = new Promise<FileWritten<Hash>>((resolve, reject) => {
      this.#worker.on('message', (m: WriterWorkerMessage) => {
        if ('error' in m) {
          reject(this.#fail(Object.assign(new Error(m.error.message), m.error)))
        } else {
          resolve({ bytes: this.bytes, sha256: m.sha256 } as FileWritten<Hash>)
        }
      })
      this.#worker.on('error', (error) => reject(this.#fail(error)))
      this.#worker.on('exit', () => reject(this.#fail(new Error('the file writer stopped'))))
    })
    this.#result.catch(() => {})
    this.#exit = new Promise((resolve) =>
      this.#worker.once('exit', () => {
        this.#exited = true
        resolve()
      })
    )
  }

  #fail(error: Error): Error {
    this.#failed ??= error
    // Wakes this side if it waits for a free slot.
    signal(this.#ring.ctrl, CTRL.FROM_WORKER, CTRL.WRITER_WAITS)
    return this.#failed
  }

  /**
   * Takes a copy of `chunk` (its memory can be reused as soon as this returns). Returns a
   * promise to wait for before the next write when the ring is full.
   */
  write(chunk: Uint8Array): Promise<void> | undefined {
    if (this.#failed) return Promise.reject(this.#failed)
    const { bytes: ring, ctrl } = this.#ring
    let offset = 0
    while (offset < chunk.length) {
      if (this.#filled === 0 && this.#handed - Atomics.load(ctrl, CTRL.DONE) >= SLOTS) {
        this.bytes += offset
        return this.#waitThen(chunk.subarray(offset))
      }
      const n = Math.min(SLOT_BYTES - this.#filled, chunk.length - offset)
      const at = (this.#handed % SLOTS) * SLOT_BYTES + this.#filled
      ring.set(n === chunk.length ? chunk : chunk.subarray(offset, offset + n), at)
      this.#filled += n
      offset += n
      if (this.#filled === SLOT_BYTES) this.#handOver()
    }
    this.bytes += chunk.length
    return undefined
  }

  /**
   * Writing in place: a view of the ring's free space (up to the end of the current slot) where
   * the next bytes can be put, by a socket read for instance; undefined while the ring is full
   * (wait for {@link ready}). Tell how many bytes were put there with {@link commit} before any
   * other call. The bytes stay as they are until at least 15 MiB more have been committed.
   */
  reserve(): Uint8Array | undefined {
    if (this.#failed || this.#copying) return undefined
    const { bytes: ring, ctrl } = this.#ring
    if (this.#filled === 0 && this.#handed - Atomics.load(ctrl, CTRL.DONE) >= SLOTS)
      return undefined
    const start = (this.#handed % SLOTS) * SLOT_BYTES
    return ring.subarray(start + this.#filled, start + SLOT_BYTES)
  }

  /** Takes the `n` bytes put at the start of the last {@link reserve} view. */
  commit(n: number): void {
    this.#filled += n
    this.bytes += n
    if (this.#filled === SLOT_BYTES) this.#handOver()
  }

  /** Resolves once {@link reserve} has room again; rejects when the writer failed. */
  ready(): Promise<void> {
    return this.#waitForWorker(() => this.#hasRoom())
  }

  #hasRoom(): boolean {
    return this.#filled > 0 || this.#handed - Atomics.load(this.#ring.ctrl, CTRL.DONE) < SLOTS
  }

  #handOver(): void {
    const { ctrl } = this.#ring
    this.#filled = 0
    Atomics.store(ctrl, CTRL.FILLED, ++this.#handed)
    signal(ctrl, CTRL.TO_WORKER, CTRL.WORKER_WAITS)
  }

  async #waitThen(rest: Uint8Array): Promise<void> {
    this.#copying = true
    try {
      await this.ready()
    } finally {
      this.#copying = false
    }
    await this.write(rest)
  }

  /** Waits (the worker ref'd) until `ready()` or a failure. */
  async #waitForWorker(ready: () => boolean): Promise<void> {
    const { ctrl } = this.#ring
    this.#worker.ref()
    try {
      for (;;) {
        const seen = Atomics.load(ctrl, CTRL.FROM_WORKER)
        if (this.#failed) throw this.#failed
        if (Atomics.load(ctrl, CTRL.FAILED)) {
          await this.#result
          throw this.#failed ?? new Error('the file writer failed')
        }
        if (ready()) return
        await waitForSignal(ctrl, CTRL.FROM_WORKER, CTRL.WRITER_WAITS, seen)
      }
    } finally {
      if (!this.#exited) this.#worker.unref()
    }
  }

  /** Writes what is left (fsynced with `fsync`), closes the file and gives the digest. */
  finish(): Promise<FileWritten<Hash>> {
    this.#finishing ??= this.#finish()
    return this.#finishing
  }

  async #finish(): Promise<FileWritten<Hash>> {
    try {
      if (this.#failed) throw this.#failed
      const { ctrl } = this.#ring
      Atomics.store(ctrl, CTRL.TAIL, this.#filled)
      Atomics.store(ctrl, CTRL.STATE, STATE.FINISH)
      signal(ctrl, CTRL.TO_WORKER, CTRL.WORKER_WAITS)
      this.#worker.ref()
      return await this.#result
    } finally {
      await this.close()
    }
  }

  /**
   * Stops the worker (after the write it may be in) and closes the file, whose content is then
   * whatever was written. Later writes reject.
   */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#fail(new Error('the file writer was closed'))
      Atomics.store(this.#ring.ctrl, CTRL.STATE, STATE.STOP)
      signal(this.#ring.ctrl, CTRL.TO_WORKER, CTRL.WORKER_WAITS)
      // The worker uses the file descriptor: close it only once the worker is gone.
      this.#worker.ref()
      await this.#exit
      await this.#file?.close().catch(() => {})
    })()
    return this.#closed
  }
}
