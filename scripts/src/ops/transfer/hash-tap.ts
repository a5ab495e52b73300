import { createHash, type Hash } from 'node:crypto'
import { Transform, type TransformCallback } from 'node:stream'

/** A pass-through that counts bytes and computes their SHA-256 (what `sha256sum` prints). */
export class HashTap extends Transform {
  readonly #hash: Hash = createHash('sha256')
  bytes = 0

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length
    this.#hash.update(chunk)
    callback(null, chunk)
  }

  /** The hex digest; call once, after the end. */
  digest(): string {
    return this.#hash.digest('hex')
  }
}
