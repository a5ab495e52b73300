import { Transform, Writable, addAbortSignal } from 'node:stream'
import type { Readable, TransformCallback } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { XvaInspector } from './inspector.js'
import type { XvaDisk, XvaHeader, XvaObject } from './ova-xml.js'
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
  /**
   * Called once the compression is known (from the first bytes, before anything is
   * decompressed); what it throws fails the archive, e.g. a compression not asked for.
   */
  onCompression?: (compression: XvaCompression) => void
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

/**
 * Pass-through verifier: bytes flow out unchanged while xapi's importer is replayed on them;
 * errors are `XapiError`s with xapi's codes. `result` settles with the summary at the end.
 */
export class XvaVerifier extends Transform {
  readonly result: Promise<XvaSummary>
  readonly #inspector: XvaInspector
  #resolve!: (s: XvaSummary) => void
  #reject!: (e: Error) => void

  constructor(opts: XvaVerifierOptions = {}) {
    super({ highWaterMark: 1024 * 1024 })
    this.result = new Promise((resolve, reject) => {
      this.#resolve = resolve
      this.#reject = reject
    })
    this.result.catch(() => {})
    this.#inspector = new XvaInspector({ ...opts, onError: (e) => this.destroy(e) })
    this.once('error', (e) => this.#reject(e))
    this.once('close', () =>
      this.#reject(new Error('XVA verifier closed before the end of the archive'))
    )
    if (opts.signal) addAbortSignal(opts.signal, this)
  }

  /** Bytes received so far. */
  get bytes(): number {
    return this.#inspector.bytes
  }

  /** Disk bytes verified so far and the total announced by ova.xml (0 until it is parsed). */
  get progress(): { bytes: number; diskBytes: number; totalDiskBytes: number } {
    return this.#inspector.progress
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.push(chunk)
    try {
      if (this.#inspector.write(chunk)) cb()
      else void this.#inspector.drained().then(() => cb(this.#inspector.failure))
    } catch (e) {
      cb(e as Error)
    }
  }

  override _flush(cb: TransformCallback): void {
    this.#inspector.end().then(
      (summary) => {
        this.#resolve(summary)
        cb()
      },
      (e: Error) => cb(e)
    )
  }

  override _destroy(error: Error | null, cb: (error: Error | null) => void): void {
    this.#inspector.destroy()
    cb(error)
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
