import { CTRL, DIRECT_ALIGN, SLOTS, SLOT_BYTES, STATE } from './ring.js'

/** What the worker is started with (its `workerData`). */
export type WriterWorkerData = {
  readonly ring: SharedArrayBuffer
  readonly ctrl: SharedArrayBuffer
  /** The open file, or -1 to hash only. */
  readonly fd: number
  readonly path: string | undefined
  /** `fd` was opened with O_DIRECT. */
  readonly direct: boolean
  readonly fsync: boolean
  readonly sha256: boolean
}

/** What the worker posts once, before it ends. */
export type WriterWorkerMessage =
  | { readonly done: true; readonly sha256: string | undefined }
  | {
      readonly error: { message: string; code?: string; errno?: number; syscall?: string }
    }

// CommonJS, run with `eval: true`: a worker file would need the TypeScript loader in the worker.
//
// The worker takes each run of full slots with one positional write in the thread pool, hashing
// the same bytes meanwhile. With O_DIRECT the bytes go from the ring to the device: no page-cache copy, no dirty
// pages left behind. Where the file system refuses an O_DIRECT write (EINVAL), it reopens the file
// without it and goes on; buffered writes are then fdatasynced every SYNC_EVERY bytes with
// `fsync`, so that the disk works during the transfer rather than all at the end.
export const WRITER_WORKER_SOURCE = `'use strict'
const { workerData, parentPort } = require('node:worker_threads')
const fs = require('node:fs')
const { promisify } = require('node:util')
const { createHash } = require('node:crypto')
const SLOT = ${SLOT_BYTES}, SLOTS = ${SLOTS}, ALIGN = ${DIRECT_ALIGN}, SYNC_EVERY = 64 * 1024 * 1024
const FILLED = ${CTRL.FILLED}, DONE = ${CTRL.DONE}, STATE = ${CTRL.STATE}, TAIL = ${CTRL.TAIL}
const FAILED = ${CTRL.FAILED}, TO_WORKER = ${CTRL.TO_WORKER}, FROM_WORKER = ${CTRL.FROM_WORKER}
const WORKER_WAITS = ${CTRL.WORKER_WAITS}, WRITER_WAITS = ${CTRL.WRITER_WAITS}
const FINISH = ${STATE.FINISH}, STOP = ${STATE.STOP}
const writeAt = promisify(fs.write)
const ring = new Uint8Array(workerData.ring)
const ctrl = new Int32Array(workerData.ctrl)
const hash = workerData.sha256 ? createHash('sha256') : undefined
let fd = workerData.fd
let direct = workerData.direct
let ownFd = -1
let position = 0
let syncedAt = 0

function tell() {
  Atomics.add(ctrl, FROM_WORKER, 1)
  if (Atomics.load(ctrl, WRITER_WAITS) !== 0) Atomics.notify(ctrl, FROM_WORKER)
}

// In the thread pool: the hash of the same bytes runs meanwhile on this thread.
async function write(view) {
  for (let off = 0; off < view.length; ) {
    let n
    try {
      n = (await writeAt(fd, view, off, view.length - off, position)).bytesWritten
    } catch (error) {
      if (!direct || error.code !== 'EINVAL') throw error
      ownFd = fd = fs.openSync(workerData.path, fs.constants.O_WRONLY)
      direct = false
      continue
    }
    off += n
    position += n
    // A short O_DIRECT write leaves the offset unaligned: the rest goes through the page cache.
    if (direct && off < view.length) direct = false
  }
  if (!direct && workerData.fsync && position - syncedAt >= SYNC_EVERY) {
    syncedAt = position
    await promisify(fs.fdatasync)(fd)
  }
}

async function take(from, count) {
  const view = ring.subarray(from * SLOT, (from + count) * SLOT)
  const writing = fd >= 0 ? write(view) : undefined
  if (hash) hash.update(view)
  await writing
}

async function finish(filled) {
  const tail = Atomics.load(ctrl, TAIL)
  const slot = filled % SLOTS
  const view = ring.subarray(slot * SLOT, slot * SLOT + tail)
  if (hash) hash.update(view)
  if (fd < 0) return
  if (tail > 0 && direct) {
    // O_DIRECT writes whole blocks: pad the last one, then cut the file to its length.
    const end = position + tail
    await write(ring.subarray(slot * SLOT, slot * SLOT + Math.ceil(tail / ALIGN) * ALIGN))
    fs.ftruncateSync(fd, end)
    position = end
  } else if (tail > 0) {
    await write(view)
  }
  if (workerData.fsync) fs.fsyncSync(fd)
}

async function run() {
  let done = 0
  for (;;) {
    const seen = Atomics.load(ctrl, TO_WORKER)
    // STATE before FILLED: FINISH is set after the last hand-over, so FILLED is then final.
    const state = Atomics.load(ctrl, STATE)
    const filled = Atomics.load(ctrl, FILLED)
    if (state === STOP) return
    if (filled > done) {
      const count = Math.min(filled - done, SLOTS - (done % SLOTS))
      await take(done % SLOTS, count)
      done += count
      Atomics.store(ctrl, DONE, done)
      tell()
      continue
    }
    if (state === FINISH) {
      await finish(filled)
      parentPort.postMessage({ done: true, sha256: hash ? hash.digest('hex') : undefined })
      return
    }
    Atomics.store(ctrl, WORKER_WAITS, 1)
    const wait = Atomics.waitAsync(ctrl, TO_WORKER, seen)
    if (wait.async) await wait.value
    Atomics.store(ctrl, WORKER_WAITS, 0)
  }
}

// Nothing else keeps this thread's event loop alive while it waits on the ring.
const keepAlive = setInterval(() => {}, 1 << 30)
run()
  .catch((error) => {
    Atomics.store(ctrl, FAILED, 1)
    parentPort.postMessage({
      error: { message: String(error.message), code: error.code, errno: error.errno, syscall: error.syscall },
    })
    tell()
  })
  .finally(() => {
    clearInterval(keepAlive)
    if (ownFd >= 0) fs.closeSync(ownFd)
  })
`
