import { Xxh64, xxh64 } from '@node-rs/xxhash'

/** XVA and simulator block size: xapi's `chunk_size` (1 MiB). */
export const XVA_BLOCK_SIZE = 1024 * 1024

const ZERO_BLOCK = Buffer.alloc(XVA_BLOCK_SIZE)
const zeroDigests = new Map<number, bigint>()

/** True when `data` (at most one block) contains only zero bytes. */
export function isZeroBlock(data: Uint8Array): boolean {
  if (data.length > XVA_BLOCK_SIZE) {
    for (let off = 0; off < data.length; off += XVA_BLOCK_SIZE) {
      if (!isZeroBlock(data.subarray(off, off + XVA_BLOCK_SIZE))) return false
    }
    return true
  }
  return Buffer.compare(data, ZERO_BLOCK.subarray(0, data.length)) === 0
}

/** XXH64 (seed 0) of `length` zero bytes, cached. */
export function zeroBlockDigest(length: number): bigint {
  let d = zeroDigests.get(length)
  if (d === undefined) {
    d = xxh64(ZERO_BLOCK.subarray(0, length))
    zeroDigests.set(length, d)
  }
  return d
}

/**
 * Content hash of a virtual disk, independent of how the bytes were produced or transported.
 *
 * The disk is cut into 1 MiB blocks aligned on the disk offset; every block that is not all zeros
 * contributes (index, XXH64 of its bytes) in increasing index order, after the virtual size. Two
 * disks with the same size and bytes hash the same whatever their history (sparse or not,
 * exported with gaps or keep-alives, generated or imported). Feed `add()` in increasing order.
 */
export class DiskHasher {
  readonly virtualSize: number
  readonly #h = new Xxh64()
  readonly #rec = Buffer.alloc(16)
  #last = -1

  constructor(virtualSize: number) {
    this.virtualSize = virtualSize
    const head = Buffer.alloc(24)
    head.write('xapi-ops/disk/v1', 0, 'latin1')
    head.writeBigUInt64BE(BigInt(virtualSize), 16)
    this.#h.update(head)
  }

  /** Adds a non-zero aligned block by its XXH64 digest; zero blocks must be skipped by the caller. */
  add(index: number, digest: bigint): void {
    if (index <= this.#last) throw new RangeError(`disk hash: block ${index} out of order`)
    this.#last = index
    this.#rec.writeBigUInt64BE(BigInt(index), 0)
    this.#rec.writeBigUInt64BE(digest, 8)
    this.#h.update(this.#rec)
  }

  /** Adds an aligned block by its bytes; skips it when all zeros. */
  addBlock(index: number, data: Uint8Array, digest: bigint = xxh64(data)): void {
    if (digest === zeroBlockDigest(data.length) && isZeroBlock(data)) return
    this.add(index, digest)
  }

  /** The hash, `xxh64:` followed by 16 lower-case hex digits. */
  digest(): string {
    return `xxh64:${this.#h.digest().toString(16).padStart(16, '0')}`
  }
}
