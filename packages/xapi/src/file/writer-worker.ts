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
// The worker takes runs of full slots with positional writes in the thread pool, up to 4 at
// once, hashing the same bytes meanwhile; a slot is given back once it and those before it
// are written. With O_DIRECT the bytes go from the ring to the device: no page-cache copy, no dirty
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
const fdatasync = promisify(fs.fdatasync)
// Writes in flight at once (the thread pool has 4 threads), each of up to RUN_SLOTS slots.
const MAX_WRITES = 4, RUN_SLOTS = 4
const ring = new Uint8Array(workerData.ring)
const ctrl = new Int32Array(workerData.ctrl)
const hash = workerData.sha256 ? createHash('sha256') : undefined
let fd = workerData.fd
let direct = workerData.direct
let ownFd = -1
let syncedAt = 0
let writes = 0
let failure

function tell() {
  Atomics.add(ctrl, FROM_WORKER, 1)
  if (Atomics.load(ctrl, WRITER_WAITS) !== 0) Atomics.notify(ctrl, FROM_WORKER)
}

// Wakes this thread's loop (it waits on TO_WORKER) after a write settled.
function wake() {
  Atomics.add(ctrl, TO_WORKER, 1)
  Atomics.notify(ctrl, TO_WORKER)
}

// Writes \`view\` at \`at\` from the thread pool (several at once: a device takes a queue of
// O_DIRECT writes faster than one at a time).
async function write(view, at) {
  for (let off = 0; off < view.length; ) {
    const used = fd
    let n
    try {
      n = (await writeAt(used, view, off, view.length - off, at + off)).bytesWritten
    } catch (error) {
      if (error.code !== 'EINVAL' || used !== workerData.fd || !workerData.direct) throw error
      buffered()
      continue
    }
    off += n
    // A short O_DIRECT write leaves the offset unaligned: the rest goes through the page cache.
    if (off < view.length && fd === workerData.fd) buffered()
  }
}

function buffered() {
  if (!direct) return
  ownFd = fd = fs.openSync(workerData.path, fs.constants.O_WRONLY)
  direct = false
}

async function finish(filled) {
  const tail = Atomics.load(ctrl, TAIL)
  const slot = filled % SLOTS
  const view = ring.subarray(slot * SLOT, slot * SLOT + tail)
  if (hash) hash.update(view)
  if (fd < 0) return
  const at = filled * SLOT
  if (tail > 0 && direct) {
    // O_DIRECT writes whole blocks: pad the last one, then cut the file to its length.
    await write(ring.subarray(slot * SLOT, slot * SLOT + Math.ceil(tail / ALIGN) * ALIGN), at)
    fs.ftruncateSync(fd, at + tail)
  } else if (tail > 0) {
    await write(view, at)
  }
  if (workerData.fsync) fs.fsyncSync(fd)
}

async function waitForWake(seen) {
  Atomics.store(ctrl, WORKER_WAITS, 1)
  const wait = Atomics.waitAsync(ctrl, TO_WORKER, seen)
  if (wait.async) await wait.value
  Atomics.store(ctrl, WORKER_WAITS, 0)
}

async function run() {
  let taken = 0
  let done = 0
  // Runs written, by first slot, until the runs before them are written too.
  const written = new Map()
  const complete = (from, count) => {
    written.set(from, count)
    while (written.has(done)) {
      const n = written.get(done)
      written.delete(done)
      done += n
    }
    Atomics.store(ctrl, DONE, done)
    tell()
  }
  for (;;) {
    const seen = Atomics.load(ctrl, TO_WORKER)
    if (failure) throw failure
    // STATE before FILLED: FINISH is set after the last hand-over, so FILLED is then final.
    const state = Atomics.load(ctrl, STATE)
    const filled = Atomics.load(ctrl, FILLED)
    if (state === STOP && writes === 0) return
    if (state !== STOP && filled > taken && writes < MAX_WRITES) {
      const from = taken
      const count = Math.min(filled - from, SLOTS - (from % SLOTS), RUN_SLOTS)
      const view = ring.subarray((from % SLOTS) * SLOT, ((from % SLOTS) + count) * SLOT)
      taken += count
      if (fd >= 0) {
        writes++
        write(view, from * SLOT).then(
          async () => {
            if (!direct && workerData.fsync && (from + count) * SLOT - syncedAt >= SYNC_EVERY) {
              syncedAt = (from + count) * SLOT
              await fdatasync(fd)
            }
            writes--
            complete(from, count)
            wake()
          },
          (error) => {
            failure ??= error
            writes--
            wake()
          }
        )
      }
      // The write reads the ring from the thread pool meanwhile: both only read it.
      if (hash) hash.update(view)
      if (fd < 0) complete(from, count)
      continue
    }
    if (state === FINISH && taken === filled && writes === 0) {
      await finish(filled)
      parentPort.postMessage({ done: true, sha256: hash ? hash.digest('hex') : undefined })
      return
    }
    await waitForWake(seen)
  }
}

// Nothing else keeps this thread's event loop alive while it waits on the ring.
const keepAlive = setInterval(() => {}, 1 << 30)
run()
  .catch(async (error) => {
    Atomics.store(ctrl, FAILED, 1)
    parentPort.postMessage({
      error: { message: String(error.message), code: error.code, errno: error.errno, syscall: error.syscall },
    })
    tell()
    // The writer closes the file once this thread is gone: no write of ours may be running then.
    while (writes > 0) await waitForWake(Atomics.load(ctrl, TO_WORKER))
  })
  .finally(() => {
    clearInterval(keepAlive)
    if (ownFd >= 0) fs.closeSync(ownFd)
  })
`
