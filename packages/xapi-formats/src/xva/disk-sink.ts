import { xxh64 } from '@node-rs/xxhash'
import { XapiError } from '../errors.js'
import { DiskHasher, XVA_BLOCK_SIZE, isZeroBlock, zeroBlockDigest } from './disk-hash.js'

const BS = XVA_BLOCK_SIZE

/** Receives the aligned, non-zero 1 MiB blocks of a disk (`index` = offset / 1 MiB). */
export type BlockConsumer = (index: number, data: Buffer) => void

/**
 * Receives the aligned, non-zero 1 MiB blocks of a disk as consecutive pieces (views valid during
 * the call only: copy what you keep) with the XXH64 of their bytes.
 */
export type BlockPiecesConsumer = (index: number, pieces: readonly Buffer[], xxh64: bigint) => void

/**
 * Turns a disk's byte stream (data pieces and runs of zeros, at increasing offsets) into aligned
 * 1 MiB blocks: hashes them (`DiskHasher`) and hands non-zero ones to the consumer. Constant memory.
 */
export class DiskSink {
  readonly id: string
  readonly virtualSize: number
  readonly #hasher: DiskHasher
  readonly #consumer: BlockConsumer | undefined
  readonly #piecesConsumer: BlockPiecesConsumer | undefined
  /** Disk offset of the next byte. */
  pos = 0
  #cur: Buffer | undefined
  #curFill = 0
  #curNonZero = false

  constructor(
    id: string,
    virtualSize: number,
    consumer?: BlockConsumer,
    piecesConsumer?: BlockPiecesConsumer
  ) {
    this.id = id
    this.virtualSize = virtualSize
    this.#hasher = new DiskHasher(virtualSize)
    this.#consumer = consumer
    this.#piecesConsumer = piecesConsumer
  }

  #len(index: number): number {
    return Math.min(BS, this.virtualSize - index * BS)
  }

  #overflow(n: number): void {
    if (this.pos + n > this.virtualSize) {
      throw new XapiError('IMPORT_ERROR', [
        `Invalid XVA file: disk ${this.id} has more data than its virtual_size (${this.virtualSize})`,
      ])
    }
  }

  #emit(index: number, data: Buffer, digest: bigint | undefined, owned: boolean): void {
    const d = digest ?? xxh64(data)
    if (d === zeroBlockDigest(data.length) && isZeroBlock(data)) return
    this.#hasher.add(index, d)
    this.#consumer?.(index, owned ? data : Buffer.from(data))
    this.#piecesConsumer?.(index, [data], d)
  }

  /**
   * Disk bytes at the current offset. `digest` (XXH64 of `data`) may be passed when known;
   * `owned` means the consumer may keep `data` as is.
   */
  write(data: Buffer, digest?: bigint, owned = false): void {
    this.#overflow(data.length)
    const index = Math.floor(this.pos / BS)
    if (this.#curFill === 0 && this.pos % BS === 0 && data.length === this.#len(index)) {
      this.#emit(index, data, digest, owned)
      this.pos += data.length
      return
    }
    let off = 0
    while (off < data.length) {
      const i = Math.floor(this.pos / BS)
      const len = this.#len(i)
      const cur = (this.#cur ??= Buffer.alloc(len))
      const n = Math.min(len - this.#curFill, data.length - off)
      const piece = data.subarray(off, off + n)
      piece.copy(cur, this.#curFill)
      this.#curNonZero ||= !isZeroBlock(piece)
      this.#advance(n)
      off += n
    }
  }

  /**
   * Disk bytes at the current offset given as consecutive pieces, `length` bytes in all, with the
   * XXH64 of the whole: an aligned block needs no copy when there is no consumer.
   */
  writePieces(pieces: readonly Buffer[], length: number, digest: bigint): void {
    this.#overflow(length)
    const index = Math.floor(this.pos / BS)
    if (
      this.#consumer === undefined &&
      this.#curFill === 0 &&
      this.pos % BS === 0 &&
      length === this.#len(index)
    ) {
      if (digest !== zeroBlockDigest(length) || !pieces.every((p) => isZeroBlock(p))) {
        this.#hasher.add(index, digest)
        this.#piecesConsumer?.(index, pieces, digest)
      }
      this.pos += length
      return
    }
    for (const p of pieces) this.write(p)
  }

  /** `n` zero bytes (an omitted run of blocks). */
  zeros(n: number): void {
    this.#overflow(n)
    while (n > 0) {
      if (this.#curFill === 0 && this.pos % BS === 0) {
        const whole = Math.floor(n / BS) * BS
        const skip = Math.min(whole, this.virtualSize - this.pos)
        if (skip > 0) {
          this.pos += skip
          n -= skip
          continue
        }
      }
      const len = this.#len(Math.floor(this.pos / BS))
      this.#cur ??= Buffer.alloc(len)
      const k = Math.min(len - this.#curFill, n)
      this.#cur.fill(0, this.#curFill, this.#curFill + k)
      this.#advance(k)
      n -= k
    }
  }

  #advance(n: number): void {
    const index = Math.floor(this.pos / BS)
    this.pos += n
    this.#curFill += n
    if (this.#curFill === this.#len(index)) {
      if (this.#curNonZero) this.#emit(index, this.#cur!, undefined, true)
      this.#cur = undefined
      this.#curFill = 0
      this.#curNonZero = false
    }
  }

  /** True once every byte up to the virtual size was received. */
  get complete(): boolean {
    return this.pos >= this.virtualSize
  }

  /** The disk's content hash (`DiskHasher`); call once complete. */
  hash(): string {
    return this.#hasher.digest()
  }
}
