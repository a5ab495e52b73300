/**
 * The memory a plain socket reads into when its reads are taken in place (`onread`): one buffer,
 * read into from start to end and again, so that a transfer allocates nothing per read. A 64 KiB
 * buffer per read (Node's default) costs the export path about 15 % of its throughput in
 * allocation and garbage collection.
 *
 * A read's bytes stay as they are until RING_BYTES - MAX_READ_BYTES (7.75 MiB) more have been
 * read: whoever keeps views of them must be done by then. The XVA importer keeps at most one
 * block (1 MiB) and its tar header; decompressors get copies; a relay keeps at most
 * RELAY_IN_FLIGHT_BYTES being written to the other socket.
 */
export const RING_BYTES = 8 * 1024 * 1024
export const MAX_READ_BYTES = 256 * 1024

export class ReadRing {
  readonly #buffer = Buffer.allocUnsafeSlow(RING_BYTES)
  #pos = 0

  /** Where the next read goes. */
  next(): Buffer {
    if (RING_BYTES - this.#pos < MAX_READ_BYTES) this.#pos = 0
    return this.#buffer.subarray(this.#pos, this.#pos + MAX_READ_BYTES)
  }

  /** Records that `n` bytes were read into the last `next()`. */
  advance(n: number): void {
    this.#pos += n
  }
}
