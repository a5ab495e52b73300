import { createCipheriv } from 'node:crypto'
import { Xxh64, xxh64 } from '@node-rs/xxhash'
import { DiskHasher, XVA_BLOCK_SIZE, isZeroBlock, zeroBlockDigest } from '@xapi-ops/xapi-formats'

/*
 * Simulated disk content: deterministic, cheap to produce and to recognise.
 *
 * A generated block is a 32-byte header (magic, seed id, block index, header check), then bytes taken
 * from a process-wide 8 MiB pseudo-random pool at an offset derived from (seed, index), up to half the
 * block, then a constant repetitive text: gzip/zstd compress it about 2x, and producing one is three
 * memcpy's. Importing recognises such blocks by parsing the header and comparing the rest, and then
 * stores a reference instead of the bytes; any other non-zero block is stored as given.
 */

const BS = XVA_BLOCK_SIZE
const HALF = BS / 2
const HEADER = 32
const MAGIC = Buffer.from('XOPSGEN1', 'latin1')
const POOL_SIZE = 8 * BS
const RUN = 8 // allocation granularity of generated disks, in blocks

let pool: Buffer | undefined
function randomPool(): Buffer {
  if (!pool) {
    const c = createCipheriv('aes-128-ctr', Buffer.alloc(16, 0x5a), Buffer.alloc(16))
    pool = Buffer.concat([c.update(Buffer.alloc(POOL_SIZE)), c.final()])
  }
  return pool
}

const PATTERN = (() => {
  const line = Buffer.from('xapi-ops simulated disk: repetitive half of a generated block.\n')
  const b = Buffer.alloc(HALF)
  for (let off = 0; off < HALF; off += line.length) line.copy(b, off)
  return b
})()

function u64(...values: bigint[]): Buffer {
  const b = Buffer.alloc(values.length * 8)
  values.forEach((v, i) => b.writeBigUInt64BE(BigInt.asUintN(64, v), i * 8))
  return b
}

function genHeader(seedId: bigint, index: number): Buffer {
  const h = Buffer.alloc(HEADER)
  MAGIC.copy(h, 0)
  h.writeBigUInt64BE(seedId, 8)
  h.writeBigUInt64BE(BigInt(index), 16)
  h.writeBigUInt64BE(xxh64(h.subarray(0, 24)), 24)
  return h
}

function poolOffset(seedId: bigint, index: number): number {
  return Number(xxh64(u64(seedId, BigInt(index), 1n)) % BigInt(POOL_SIZE - HALF))
}

/** Calls `fn` on the pieces of generated block (seedId, index) truncated to `length`, in order. */
function genPieces(seedId: bigint, index: number, length: number, fn: (p: Buffer) => void): void {
  const off = poolOffset(seedId, index)
  const pieces = [
    genHeader(seedId, index),
    randomPool().subarray(off + HEADER, off + HALF),
    PATTERN,
  ]
  let left = length
  for (const p of pieces) {
    if (left <= 0) break
    const part = p.length > left ? p.subarray(0, left) : p
    fn(part)
    left -= part.length
  }
}

/** A reference to a generated block, or the stored bytes of another non-zero block; null = zeros. */
type Entry = { seedId: bigint; index: number; length: number } | Buffer | null

const digestCache = new Map<string, bigint>()
function genDigest(seedId: bigint, index: number, length: number): bigint {
  const key = `${seedId}:${index}:${length}`
  let d = digestCache.get(key)
  if (d === undefined) {
    const h = new Xxh64()
    genPieces(seedId, index, length, (p) => h.update(p))
    d = h.digest()
    if (digestCache.size >= 1 << 20) digestCache.clear()
    digestCache.set(key, d)
  }
  return d
}
const rawDigests = new WeakMap<Buffer, bigint>()
function rawDigest(e: Buffer): bigint {
  let d = rawDigests.get(e)
  if (d === undefined) rawDigests.set(e, (d = xxh64(e)))
  return d
}

/** Recognises a generated block (any seed, any index); undefined when `data` is not one. */
function recognise(data: Buffer): Entry | undefined {
  if (data.length < HEADER || !data.subarray(0, 8).equals(MAGIC)) return undefined
  if (data.readBigUInt64BE(24) !== xxh64(data.subarray(0, 24))) return undefined
  const seedId = data.readBigUInt64BE(8)
  const index = Number(data.readBigUInt64BE(16))
  let pos = 0
  let same = true
  genPieces(seedId, index, data.length, (p) => {
    same &&= data.subarray(pos, pos + p.length).equals(p)
    pos += p.length
  })
  return same ? { seedId, index, length: data.length } : undefined
}

/** True when the consecutive pieces `a` and `b` (of the same total length) hold the same bytes. */
function samePieces(a: readonly Buffer[], b: readonly Buffer[]): boolean {
  let i = 0
  let j = 0
  let ai = 0
  let bj = 0
  while (i < a.length && j < b.length) {
    const x = a[i]!
    const y = b[j]!
    const n = Math.min(x.length - ai, y.length - bj)
    if (n > 0 && !x.subarray(ai, ai + n).equals(y.subarray(bj, bj + n))) return false
    ai += n
    bj += n
    if (ai === x.length) [i, ai] = [i + 1, 0]
    if (bj === y.length) [j, bj] = [j + 1, 0]
  }
  return true
}

/** `recognise` over a block given as pieces of `length` bytes in all. */
function recognisePieces(pieces: readonly Buffer[], length: number): Entry | undefined {
  const first = pieces[0]
  if (first === undefined || length < HEADER) return undefined
  const head = first.length >= HEADER ? first : Buffer.concat(pieces, length)
  if (!head.subarray(0, 8).equals(MAGIC)) return undefined
  if (head.readBigUInt64BE(24) !== xxh64(head.subarray(0, 24))) return undefined
  const seedId = head.readBigUInt64BE(8)
  const index = Number(head.readBigUInt64BE(16))
  const gen: Buffer[] = []
  genPieces(seedId, index, length, (p) => gen.push(p))
  return samePieces(pieces, gen) ? { seedId, index, length } : undefined
}

/**
 * The bytes of a simulated VDI, in 1 MiB blocks. Generated disks cost nothing until read; copies
 * share everything until written; `hash()` matches `DiskHasher` over the same bytes (the XVA
 * verifier reports the same hash for a downloaded disk).
 */
export class DiskContent {
  readonly virtualSize: number
  readonly #seedId: bigint | null
  readonly #fraction: number
  #overrides: Map<number, Entry>
  #shared = false
  #hash: string | undefined
  #baseAllocated: number | undefined

  private constructor(virtualSize: number, seedId: bigint | null, fraction: number) {
    if (!Number.isSafeInteger(virtualSize) || virtualSize < 0) {
      throw new RangeError(`invalid virtual size ${virtualSize}`)
    }
    this.virtualSize = virtualSize
    this.#seedId = seedId
    this.#fraction = fraction
    this.#overrides = new Map()
  }

  /** Deterministic content: about `allocatedFraction` of the blocks (in runs of 8) hold data. */
  static generated(seed: string, virtualSize: number, allocatedFraction = 0.5): DiskContent {
    return new DiskContent(virtualSize, xxh64(`xapi-ops/seed/${seed}`), allocatedFraction)
  }

  /** An all-zero disk (the destination of an import, or a new VDI). */
  static empty(virtualSize: number): DiskContent {
    return new DiskContent(virtualSize, null, 0)
  }

  /** Number of blocks, the last one possibly shorter than 1 MiB. */
  get blockCount(): number {
    return Math.ceil(this.virtualSize / BS)
  }

  /** Length in bytes of block `index`. */
  blockLength(index: number): number {
    this.#check(index)
    return Math.min(BS, this.virtualSize - index * BS)
  }

  /** Copy-on-write copy: O(1) until either side is written. */
  clone(): DiskContent {
    const c = new DiskContent(this.virtualSize, this.#seedId, this.#fraction)
    c.#overrides = this.#overrides
    c.#shared = this.#shared = true
    c.#hash = this.#hash
    c.#baseAllocated = this.#baseAllocated
    return c
  }

  /** True when block `index` is not all zeros (cheap: no bytes are produced). */
  isAllocated(index: number): boolean {
    this.#check(index)
    return this.#entry(index) !== null
  }

  /** Allocated blocks × block size, as a sparse SR would report `physical_utilisation`. */
  physicalUtilisation(): number {
    if (this.#baseAllocated === undefined) {
      let n = 0
      for (let i = 0; i < this.blockCount; i++) if (this.#baseEntry(i) !== null) n++
      this.#baseAllocated = n
    }
    let n = this.#baseAllocated
    for (const [i, e] of this.#overrides)
      n += (e !== null ? 1 : 0) - (this.#baseEntry(i) !== null ? 1 : 0)
    return n * BS
  }

  /** A fresh copy of block `index` (the last may be short), or null when it is all zeros. */
  block(index: number): Buffer | null {
    this.#check(index)
    const e = this.#entry(index)
    if (e === null || Buffer.isBuffer(e)) return e === null ? null : Buffer.from(e)
    const out = Buffer.allocUnsafe(e.length)
    let pos = 0
    genPieces(e.seedId, e.index, e.length, (p) => (pos += p.copy(out, pos)))
    return out
  }

  /**
   * Block `index` as pieces to send without copying (a generated block: its header and subarrays
   * of shared buffers), with its XXH64; null when it is all zeros. The pieces must not be modified.
   */
  blockPieces(index: number): { pieces: Buffer[]; xxh64: bigint } | null {
    this.#check(index)
    const e = this.#entry(index)
    if (e === null) return null
    if (Buffer.isBuffer(e)) return { pieces: [e], xxh64: rawDigest(e) }
    const pieces: Buffer[] = []
    genPieces(e.seedId, e.index, e.length, (p) => pieces.push(p))
    return { pieces, xxh64: genDigest(e.seedId, e.index, e.length) }
  }

  /** Writes block `index` (exactly `blockLength(index)` bytes); generated blocks are stored by reference. */
  writeBlock(index: number, data: Buffer): void {
    const len = this.blockLength(index)
    if (data.length !== len)
      throw new RangeError(`block ${index}: ${data.length} bytes, expected ${len}`)
    const entry: Entry = isZeroBlock(data) ? null : (recognise(data) ?? copyOf(data))
    this.#store(index, entry)
  }

  /**
   * `writeBlock` with the block given as consecutive pieces (not kept: copied if not generated)
   * and the XXH64 of their bytes.
   */
  writeBlockPieces(index: number, pieces: readonly Buffer[], digest: bigint): void {
    const len = this.blockLength(index)
    let got = 0
    for (const p of pieces) got += p.length
    if (got !== len) throw new RangeError(`block ${index}: ${got} bytes, expected ${len}`)
    let entry: Entry
    if (digest === zeroBlockDigest(len) && pieces.every((p) => isZeroBlock(p))) entry = null
    else {
      entry = recognisePieces(pieces, len) ?? null
      if (entry === null) {
        const b = Buffer.allocUnsafeSlow(len)
        let pos = 0
        for (const p of pieces) pos += p.copy(b, pos)
        rawDigests.set(b, digest)
        entry = b
      }
    }
    this.#store(index, entry)
  }

  #store(index: number, entry: Entry): void {
    if (this.#shared) {
      this.#overrides = new Map(this.#overrides)
      this.#shared = false
    }
    const base = this.#baseEntry(index)
    if (sameEntry(entry, base)) this.#overrides.delete(index)
    else this.#overrides.set(index, entry)
    this.#hash = undefined
  }

  /** Content hash (`DiskHasher`): equal for equal bytes, whatever the history. */
  hash(): string {
    if (this.#hash === undefined) {
      const h = new DiskHasher(this.virtualSize)
      for (let i = 0; i < this.blockCount; i++) {
        const e = this.#entry(i)
        if (e === null) continue
        if (Buffer.isBuffer(e)) h.add(i, rawDigest(e))
        else h.add(i, genDigest(e.seedId, e.index, e.length))
      }
      this.#hash = h.digest()
    }
    return this.#hash
  }

  #check(index: number): void {
    if (!Number.isInteger(index) || index < 0 || index >= this.blockCount) {
      throw new RangeError(`block ${index} out of range (0..${this.blockCount - 1})`)
    }
  }

  #entry(index: number): Entry {
    const o = this.#overrides.get(index)
    return o !== undefined ? o : this.#baseEntry(index)
  }

  #baseEntry(index: number): Entry {
    if (this.#seedId === null || this.#fraction <= 0) return null
    const run = xxh64(u64(this.#seedId, BigInt(Math.floor(index / RUN)), 2n))
    if (Number(run >> 11n) / 2 ** 53 >= this.#fraction) return null
    return { seedId: this.#seedId, index, length: Math.min(BS, this.virtualSize - index * BS) }
  }
}

function copyOf(data: Buffer): Buffer {
  const b = Buffer.allocUnsafeSlow(data.length)
  data.copy(b)
  return b
}

function sameEntry(a: Entry, b: Entry): boolean {
  if (a === null || b === null) return a === b
  if (Buffer.isBuffer(a) || Buffer.isBuffer(b)) return false
  return a.seedId === b.seedId && a.index === b.index && a.length === b.length
}
