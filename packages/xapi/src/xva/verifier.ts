import { Transform, Writable, addAbortSignal } from 'node:stream'
import type { Readable, TransformCallback } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { createGunzip } from 'node:zlib'
import { DecompressStream } from 'zstd-napi'
import { XapiError } from '../errors.js'
import { XvaImporter } from './importer.js'
import type { XvaDisk, XvaHeader, XvaObject } from './ova-xml.js'
import { TAR_BLOCK, parseTarHeader } from './tar.js'
import type { XvaCompression } from './writer.js'

export interface XvaVerifierOptions {
  /** Ignore checksum mismatches (they are listed in the summary), like xapi's `force=true`. */
  force?: boolean
  /** The archive holds ova.xml only (`/export_metadata`, `/import_metadata`). */
  metadataOnly?: boolean
  /** Fail with IMPORT_INCOMPATIBLE_VERSION when the exporter's xapi_major/minor is greater. */
  importerVersion?: { major: number; minor: number }
  /** Called once ova.xml is parsed, before any disk data; may throw to reject the archive. */
  onHeader?: (header: XvaHeader, disks: XvaDisk[]) => void
  /** Each non-zero aligned 1 MiB block of each disk (`index` = offset / 1 MiB); `data` is yours. */
  onBlock?: (disk: XvaDisk, index: number, data: Buffer) => void
  /**
   * Instead of `onBlock`, without copying: a block as views of the input (valid during the call
   * only: copy what you keep) with the XXH64 of its bytes.
   */
  onBlockPieces?: (disk: XvaDisk, index: number, pieces: readonly Buffer[], xxh64: bigint) => void
  signal?: AbortSignal
}

export interface XvaDiskSummary {
  /** `Ref:N` id in the archive. */
  id: string
  virtualSize: number
  /** Content hash (`DiskHasher`), comparable with the simulator's `DiskContent.hash()`. */
  hash: string
  /** Data entries read (keep-alives included) and zero-length keep-alives. */
  entries: number
  keepAlives: number
  vdi: XvaObject
}

export interface XvaSummary {
  compression: XvaCompression
  /** Bytes received (compressed size when compressed) and uncompressed tar bytes. */
  bytes: number
  tarBytes: number
  header: XvaHeader
  vms: XvaObject[]
  disks: XvaDiskSummary[]
  /** Checksum file kinds seen: `.xxhash`, `.checksum`. */
  checksumKinds: string[]
  /** Checksum mismatches ignored because of `force`. */
  checksumFailures: string[]
}

const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd])

/**
 * Pass-through verifier: bytes flow out unchanged while xapi's importer is replayed on them;
 * errors are `XapiError`s with xapi's codes. `result` settles with the summary at the end.
 */
export class XvaVerifier extends Transform {
  readonly result: Promise<XvaSummary>
  readonly #importer: XvaImporter
  #resolve!: (s: XvaSummary) => void
  #reject!: (e: Error) => void
  #sniff: Buffer[] = []
  #sniffLen = 0
  #mode: XvaCompression | undefined
  #z: Transform | undefined
  #zError: Error | undefined
  /** Bytes received so far. */
  bytes = 0

  constructor(opts: XvaVerifierOptions = {}) {
    super({ highWaterMark: 1024 * 1024 })
    this.result = new Promise((resolve, reject) => {
      this.#resolve = resolve
      this.#reject = reject
    })
    this.result.catch(() => {})
    this.#importer = new XvaImporter({
      force: opts.force ?? false,
      metadataOnly: opts.metadataOnly ?? false,
      importerVersion: opts.importerVersion,
      onHeader: opts.onHeader,
      onBlock: opts.onBlock,
      onBlockPieces: opts.onBlockPieces,
    })
    this.once('error', (e) => this.#reject(e))
    this.once('close', () =>
      this.#reject(new Error('XVA verifier closed before the end of the archive'))
    )
    if (opts.signal) addAbortSignal(opts.signal, this)
  }

  /** Disk bytes verified so far and the total announced by ova.xml (0 until it is parsed). */
  get progress(): { bytes: number; diskBytes: number; totalDiskBytes: number } {
    const i = this.#importer
    return { bytes: this.bytes, diskBytes: i.diskBytes, totalDiskBytes: i.totalDiskBytes }
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length
    this.push(chunk)
    try {
      if (this.#mode === undefined) {
        this.#sniff.push(chunk)
        this.#sniffLen += chunk.length
        if (this.#sniffLen < TAR_BLOCK) return cb()
        chunk = this.#decide()
      }
      this.#feed(chunk, cb)
    } catch (e) {
      cb(e as Error)
    }
  }

  override _flush(cb: TransformCallback): void {
    try {
      if (this.#mode === undefined) {
        if (this.#sniffLen === 0) throw new XapiError('IMPORT_ERROR_PREMATURE_EOF', [])
        this.#feed(this.#decide(), () => {})
      }
      const z = this.#z
      if (!z) return this.#finish(cb)
      if (this.#zError) return cb(this.#zError)
      z.once('end', () => this.#finish(cb))
      z.once('error', () => cb(this.#zError))
      z.end()
    } catch (e) {
      cb(e as Error)
    }
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
    if (this.#mode !== 'none') {
      const z: Transform = this.#mode === 'gzip' ? createGunzip() : new DecompressStream()
      z.on('data', (c: Buffer) => {
        if (this.#zError) return
        try {
          this.#importer.parser.write(c)
        } catch (e) {
          this.#zError = e as Error
          z.destroy()
          this.destroy(e as Error)
        }
      })
      z.on('error', (e: NodeJS.ErrnoException) => {
        if (this.#zError) return
        this.#zError =
          /unexpected end|ended in middle|truncated/i.test(e.message) || e.code === 'Z_BUF_ERROR'
            ? new XapiError('IMPORT_ERROR_PREMATURE_EOF', [])
            : new XapiError('IMPORT_ERROR', [
                `Invalid XVA file: ${this.#mode} stream: ${e.message}`,
              ])
        this.destroy(this.#zError)
      })
      this.#z = z
    }
    return head
  }

  #feed(chunk: Buffer, cb: TransformCallback): void {
    if (!this.#z) {
      this.#importer.parser.write(chunk)
      return cb()
    }
    if (this.#zError) return cb(this.#zError)
    if (this.#z.write(chunk)) cb()
    else this.#z.once('drain', () => cb())
  }

  #finish(cb: TransformCallback): void {
    try {
      const i = this.#importer
      i.finish()
      const header = i.header!
      this.#resolve({
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
      })
      cb()
    } catch (e) {
      cb(e as Error)
    }
  }
}

/** A pass-through XVA verifier (see `XvaVerifier`). */
export function createXvaVerifier(opts: XvaVerifierOptions = {}): XvaVerifier {
  return new XvaVerifier(opts)
}

/** Verifies a whole XVA stream (compressed or not) and resolves with what it holds. */
export async function verifyXva(
  source: Readable | AsyncIterable<Uint8Array>,
  opts: XvaVerifierOptions = {}
): Promise<XvaSummary> {
  const v = new XvaVerifier(opts)
  const sink = new Writable({ write: (_c, _e, cb) => cb() })
  await pipeline(source, v, sink, opts.signal ? { signal: opts.signal } : {})
  return v.result
}
