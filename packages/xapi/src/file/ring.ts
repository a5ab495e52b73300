/*
 * The memory a FileWriter shares with its worker: a ring of 1 MiB slots and a few control words.
 *
 * The ring is a shared WebAssembly.Memory: its base is page-aligned (an ArrayBuffer's is not),
 * so every slot can be written with O_DIRECT, which wants the buffer, the length and the file
 * offset aligned to the device's logical block size.
 *
 * Protocol (all through Atomics): the writer copies bytes into slot `filled % SLOTS`; when it is
 * full it increments FILLED, then TO_WORKER and notifies TO_WORKER. The worker takes slots
 * DONE..FILLED-1, then increments DONE, then FROM_WORKER and notifies FROM_WORKER. Each side
 * waits on the other's signal word only after reading it, so no wake-up is lost. STATE asks the
 * worker to finish (TAIL bytes of the last slot still to take) or to stop at once.
 *
 * A notify costs about 0.1 ms when the other thread waits asynchronously (a task posted to its
 * event loop): each side notifies only when the other says it waits (WORKER_WAITS,
 * WRITER_WAITS). Atomics are sequentially consistent, so either the waiter sees the new signal
 * value before it waits or the signaller sees the flag set.
 */

export const SLOT_BYTES = 1024 * 1024
export const SLOTS = 16
/** O_DIRECT alignment: the largest logical block size of common devices. */
export const DIRECT_ALIGN = 4096
const WASM_PAGE = 64 * 1024

export const CTRL = {
  FILLED: 0,
  DONE: 1,
  STATE: 2,
  TAIL: 3,
  FAILED: 4,
  TO_WORKER: 5,
  FROM_WORKER: 6,
  /** 1 while the worker waits on TO_WORKER. */
  WORKER_WAITS: 7,
  /** 1 while the writer waits on FROM_WORKER. */
  WRITER_WAITS: 8,
} as const
const CTRL_WORDS = 9

export const STATE = { RUNNING: 0, FINISH: 1, STOP: 2 } as const

export type Ring = {
  readonly bytes: Uint8Array
  readonly ctrl: Int32Array
  readonly buffers: { readonly ring: SharedArrayBuffer; readonly ctrl: SharedArrayBuffer }
}

export function createRing(): Ring {
  const pages = (SLOT_BYTES * SLOTS) / WASM_PAGE
  const ring = new Wasm.Memory({ initial: pages, maximum: pages, shared: true }).buffer
  const ctrl = new SharedArrayBuffer(CTRL_WORDS * 4)
  return { bytes: new Uint8Array(ring), ctrl: new Int32Array(ctrl), buffers: { ring, ctrl } }
}

/** The part of `WebAssembly` used here (not in TypeScript's ES2023 lib, which has no DOM). */
const Wasm = (
  globalThis as unknown as {
    WebAssembly: {
      Memory: new (d: { initial: number; maximum: number; shared: true }) => {
        buffer: SharedArrayBuffer
      }
    }
  }
).WebAssembly

type WaitAsync = (
  array: Int32Array,
  index: number,
  value: number
) => { async: false; value: string } | { async: true; value: Promise<string> }

/** `Atomics.waitAsync` (in Node since 16; not yet in TypeScript's ES2023 lib). */
const waitAsync = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync

/** Bumps a signal word and wakes the other side if it says it waits on it. */
export function signal(ctrl: Int32Array, index: number, waits: number): void {
  Atomics.add(ctrl, index, 1)
  if (Atomics.load(ctrl, waits) !== 0) Atomics.notify(ctrl, index)
}

/** Waits until the signal word `index` is no longer `seen`, with the `waits` flag set. */
export async function waitForSignal(
  ctrl: Int32Array,
  index: number,
  waits: number,
  seen: number
): Promise<void> {
  Atomics.store(ctrl, waits, 1)
  try {
    const wait = waitAsync(ctrl, index, seen)
    if (wait.async) await wait.value
  } finally {
    Atomics.store(ctrl, waits, 0)
  }
}
