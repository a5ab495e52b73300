import type { Transform } from 'node:stream'
import { createGunzip } from 'node:zlib'
import { DecompressStream } from 'zstd-napi'
import { XapiError } from '../errors.js'
import { XvaImporter } from './importer.js'
import { TAR_BLOCK, parseTarHeader } from './tar.js'
import type { XvaSummary, XvaVerifierOptions } from './verifier.js'
import type { XvaCompression } from './writer.js'

const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd])

/** What an {@link XvaInspector} takes on top of the verifier's options. */
export type XvaInspectorOptions = Omit<XvaVerifierOptions, 'signal'> & {
  /**
   * A failure found after `write` returned (in a compressed stream, the decompressor works
   * asynchronously). Called once; `write` and `end` then throw it too.
   */
  onError?: (error: Error) => void
}

/**
 * Replays xapi's importer on an XVA byte stream (plain, gzip or zstd) handed to it chunk by
 * chunk, without being a stream itself: the bytes are only looked at, never copied or re-emitted.
 * What `XvaVerifier` runs inside, and what a transfer that already has the bytes calls directly
 * (one stream hop less per chunk).
 */
export class XvaInspector {
  readonly #importer: XvaImporter
  readonly #onError: ((error: Error) => void) | undefined
  readonly #onCompression: ((compression: XvaCompression) => void) | undefined
  #sniff: Buffer[] = []
  #sniffLen = 0
  #mode: XvaCompression | undefined
  #z: Transform | undefined
  #failure: Error | undefined
  /** Bytes received so far (compressed bytes when compressed). */
  bytes = 0

  constructor(opts: XvaInspectorOptions = {}) {
    this.#onError = opts.onError
    this.#onCompression = opts.onCompression
    this.#importer = new XvaImporter({
      force: opts.force ?? false,
      metadataOnly: opts.metadataOnly ?? false,
      importerVersion: opts.importerVersion,
      onHeader: opts.onHeader,
      onBlock: opts.onBlock,
      onBlockPieces: opts.onBlockPieces,
    })
  }

  /** Disk bytes verified so far and the total announced by ova.xml (0 until it is parsed). */
  get progress(): { bytes: number; diskBytes: number; totalDiskBytes: number } {
    const i = this.#importer
    return { bytes: this.bytes, diskBytes: i.diskBytes, totalDiskBytes: i.totalDiskBytes }
  }

  /** The first failure found, if any. */
  get failure(): Error | undefined {
    return this.#failure
  }

  /**
   * Looks at the next bytes (views of `chunk` may be kept until their block's checksum entry:
   * do not reuse its memory). Throws the import error found in them; returns false when the
   * decompressor is full: wait for {@link drained} before the next write.
   */
  write(chunk: Buffer): boolean {
    if (this.#failure) throw this.#failure
    this.bytes += chunk.length
    try {
      if (this.#mode === undefined) {
        this.#sniff.push(chunk)
        this.#sniffLen += chunk.length
        if (this.#sniffLen < TAR_BLOCK) return true
        chunk = this.#decide()
      }
      if (!this.#z) {
        this.#importer.parser.write(chunk)
        return true
      }
      return this.#z.write(chunk)
    } catch (error) {
      this.#failure ??= error as Error
      throw error
    }
  }

  /** Resolves once the decompressor takes more (at once when it is not full or there is none). */
  drained(): Promise<void> {
    const z = this.#z
    if (!z || !z.writableNeedDrain || this.#failure) return Promise.resolve()
    return new Promise((resolve) => {
      const done = () => {
        z.off('drain', done)
        z.off('close', done)
        resolve()
      }
      z.on('drain', done)
      z.on('close', done)
    })
  }

  /** At the end of the input: resolves with what the archive holds, or rejects with the import error. */
  async end(): Promise<XvaSummary> {
    if (this.#failure) throw this.#failure
    try {
      if (this.#mode === undefined) {
        if (this.#sniffLen === 0) throw new XapiError('IMPORT_ERROR_PREMATURE_EOF', [])
        const head = this.#decide()
        if (this.#z) this.#z.write(head)
        else this.#importer.parser.write(head)
      }
      const z = this.#z
      if (z) {
        await new Promise<void>((resolve, reject) => {
          z.once('end', resolve)
          z.once('close', () => reject(this.#failure ?? new Error('decompressor closed')))
          z.end()
        })
      }
      if (this.#failure) throw this.#failure
      return this.#summary()
    } catch (error) {
      this.#failure ??= error as Error
      throw error
    }
  }

  /** Stops the decompressor, if any. */
  destroy(): void {
    this.#z?.destroy()
  }

  #fail(error: Error): void {
    if (this.#failure) return
    this.#failure = error
    this.#z?.destroy()
    this.#onError?.(error)
  }

  /** xapi's sniffing: a tar header first, else zstd by magic, else gzip. */
  #decide(): Buffer {
    const head = Buffer.concat(this.#sniff, this.#sniffLen)
    this.#sniff = []
    let tar = false
    if (head.length >= TAR_BLOCK) {
      try {
        tar = parseTarHeader(head.subarray(0, TAR_BLOCK)) !== null
      } catch {
        tar = false
      }
    }
    if (tar) this.#mode = 'none'
    else if (head.subarray(0, 4).equals(ZSTD_MAGIC)) this.#mode = 'zstd'
    else if (head[0] === 0x1f && head[1] === 0x8b) this.#mode = 'gzip'
    else if (head.length < TAR_BLOCK) throw new XapiError('IMPORT_ERROR_PREMATURE_EOF', [])
    else
      throw new XapiError('IMPORT_ERROR', ['Invalid XVA file: neither a tar archive nor gzip/zstd'])
    this.#onCompression?.(this.#mode)
    if (this.#mode !== 'none') {
      const z: Transform = this.#mode === 'gzip' ? createGunzip() : new DecompressStream()
      z.on('data', (c: Buffer) => {
        if (this.#failure) return
        try {
          this.#importer.parser.write(c)
        } catch (e) {
          this.#fail(e as Error)
        }
      })
      z.on('error', (e: NodeJS.ErrnoException) => {
        this.#fail(
          /unexpected end|ended in middle|truncated/i.test(e.message) || e.code === 'Z_BUF_ERROR'
            ? new XapiError('IMPORT_ERROR_PREMATURE_EOF', [])
            : new XapiError('IMPORT_ERROR', [
                `Invalid XVA file: ${this.#mode} stream: ${e.message}`,
              ])
        )
      })
      this.#z = z
    }
    return head
  }

  #summary(): XvaSummary {
    const i = this.#importer
    i.finish()
    const header = i.header!
    return {
      compression: this.#mode ?? 'none',
      bytes: this.bytes,
      tarBytes: i.parser.bytes,
      header,
      vms: header.objects.filter((o) => o.class === 'VM'),
      disks: i.results.map((r) => ({
        id: r.disk.id,
        virtualSize: r.disk.virtualSize,
        hash: r.hash,
        entries: r.entries,
        keepAlives: r.keepAlives,
        vdi: r.disk.vdi,
      })),
      checksumKinds: [...i.checksumKinds],
      checksumFailures: i.checksumFailures,
    }
  }
}
