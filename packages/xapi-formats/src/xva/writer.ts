import { createHash } from 'node:crypto'
import { Readable, addAbortSignal, pipeline } from 'node:stream'
import type { Writable } from 'node:stream'
import { pipeline as pipelineAsync } from 'node:stream/promises'
import { createGzip } from 'node:zlib'
import { Xxh64, xxh64 } from '@node-rs/xxhash'
import { CompressStream } from 'zstd-napi'
import { XVA_BLOCK_SIZE, isZeroBlock } from './disk-hash.js'
import { blockName } from './names.js'
import { buildOvaXml, intField } from './ova-xml.js'
import type { XvaExportObject, XvaHeader } from './ova-xml.js'
import { TAR_END, tarHeader, tarPadding } from './tar.js'

export type XvaCompression = 'none' | 'gzip' | 'zstd'
export type XvaChecksum = 'xxhash' | 'sha1'

/** The data of one exported disk. */
export interface XvaDiskSource {
  /** The VDI's ref, as given in `objects` (its `virtual_size` sets the stream length). */
  vdi: string
  /** Block `index` (1 MiB; the last one may be short), or null when it is all zeros. */
  readBlock(index: number): Buffer | null | Promise<Buffer | null>
  /**
   * Optional, used instead of `readBlock`: block `index` as pieces sent in order without being
   * copied (they must not change afterwards), with the XXH64 of their bytes when known; null when
   * the block is all zeros.
   */
  readBlockPieces?(index: number): XvaBlockPieces | null | Promise<XvaBlockPieces | null>
}

/** One block as consecutive pieces (see `XvaDiskSource.readBlockPieces`). */
export interface XvaBlockPieces {
  pieces: readonly Buffer[]
  /** XXH64 (seed 0) of the concatenated pieces, when the source knows it. */
  xxh64?: bigint
}

export interface XvaWriterOptions {
  /** Objects of ova.xml with their real refs; refs are rewritten to `Ref:N`. */
  objects: readonly XvaExportObject[]
  /** Disks to stream; written in lexicographic order of their `Ref:N` id, as xapi does. */
  disks?: readonly XvaDiskSource[]
  /** Checksum entries: `xxhash` (`.xxhash`, current xapi; default) or `sha1` (`.checksum`). */
  checksum?: XvaChecksum
  /** Compression of the whole stream (default `none`). */
  compression?: XvaCompression
  /** First `Ref:N` number (default 0). */
  firstId?: number
  /** Members merged into the ova.xml version struct. */
  version?: Record<string, unknown>
  /** mtime of the ova.xml entry (default now; blocks get 0, like xapi). */
  mtime?: Date
  /**
   * Zero-length keep-alive blocks while skipping zeros: after this many ms without output (xapi:
   * 5000, the default), or when the predicate says so (called for each skipped block).
   */
  keepAlive?: number | ((diskId: string, blockIndex: number) => boolean)
  /** Writes a wrong checksum for these blocks (fault injection; `diskIndex` in stream order). */
  corruptChecksum?: (diskIndex: number, blockIndex: number) => boolean
  /** Disk bytes covered so far (written or skipped) and the total of all virtual sizes. */
  onProgress?: (done: number, total: number) => void
  signal?: AbortSignal
}

/** The stream, plus what went into ova.xml. */
export type XvaReadable = Readable & {
  readonly header: XvaHeader
  /** Real ref → `Ref:N`. */
  readonly ids: ReadonlyMap<string, string>
  /** Sum of the streamed disks' virtual sizes. */
  readonly totalDiskBytes: number
}

function checksumOf(block: XvaBlockPieces, kind: XvaChecksum): string {
  const { pieces } = block
  if (kind === 'sha1') {
    const h = createHash('sha1')
    for (const p of pieces) h.update(p)
    return h.digest('hex')
  }
  let d = block.xxh64
  if (d === undefined) {
    if (pieces.length === 1) d = xxh64(pieces[0]!)
    else {
      const h = new Xxh64()
      for (const p of pieces) h.update(p)
      d = h.digest()
    }
  }
  return d.toString(16).toUpperCase().padStart(16, '0')
}

function blockLength(block: XvaBlockPieces): number {
  let n = 0
  for (const p of block.pieces) n += p.length
  return n
}

/** All-zero check over the pieces, stopping at the first non-zero one. */
function isZeroPieces(block: XvaBlockPieces): boolean {
  return block.pieces.every((p) => isZeroBlock(p))
}

const EMPTY: XvaBlockPieces = { pieces: [] }

async function readPieces(src: XvaDiskSource, index: number): Promise<XvaBlockPieces | null> {
  if (src.readBlockPieces) return src.readBlockPieces(index)
  const data = await src.readBlock(index)
  return data === null ? null : { pieces: [data] }
}

/** A streaming XVA (tar of ova.xml and 1 MiB blocks), optionally gzip/zstd-compressed. */
export function createXvaWriter(opts: XvaWriterOptions): XvaReadable {
  const { xml, header, ids } = buildOvaXml(opts.objects, opts)
  const kind = opts.checksum ?? 'xxhash'
  const ext = kind === 'sha1' ? '.checksum' : '.xxhash'
  const byId = new Map(header.objects.map((o) => [o.id, o]))
  const disks = (opts.disks ?? []).map((d) => {
    const id = ids.get(d.vdi)
    const vdi = id === undefined ? undefined : byId.get(id)
    if (!vdi || vdi.class !== 'VDI') throw new TypeError(`disk ${d.vdi} is not a VDI of objects`)
    return { id: vdi.id, size: intField(vdi.snapshot.virtual_size ?? ''), src: d }
  })
  disks.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  const total = disks.reduce((s, d) => s + d.size, 0)
  const keepAlive = opts.keepAlive ?? 5000

  async function* generate(): AsyncGenerator<Buffer> {
    const xmlBuf = Buffer.from(xml)
    yield tarHeader('ova.xml', xmlBuf.length, (opts.mtime ?? new Date()).getTime() / 1000)
    yield xmlBuf
    yield Buffer.alloc(tarPadding(xmlBuf.length))
    let done = 0
    for (const [diskIndex, disk] of disks.entries()) {
      const n = Math.ceil(disk.size / XVA_BLOCK_SIZE)
      let counter = 0
      let lastOutput = Date.now()
      const entry = function* (data: XvaBlockPieces, blockIndex: number): Generator<Buffer> {
        const name = blockName(disk.id, counter)
        const length = blockLength(data)
        let sum = checksumOf(data, kind)
        if (opts.corruptChecksum?.(diskIndex, blockIndex))
          sum = sum.replace(/^./, (c) => (c === '0' ? '1' : '0'))
        yield tarHeader(name, length)
        for (const p of data.pieces) if (p.length > 0) yield p
        const pad = tarPadding(length)
        if (pad > 0) yield Buffer.alloc(pad)
        yield tarHeader(name + ext, sum.length)
        yield Buffer.concat([Buffer.from(sum), Buffer.alloc(tarPadding(sum.length))])
        counter++
        lastOutput = Date.now()
      }
      for (let i = 0; i < n; i++) {
        const len = Math.min(XVA_BLOCK_SIZE, disk.size - i * XVA_BLOCK_SIZE)
        const edge = i === 0 || i === n - 1
        const data = await readPieces(disk.src, i)
        const got = data === null ? len : blockLength(data)
        if (got !== len) {
          throw new RangeError(`disk ${disk.id} block ${i}: ${got} bytes, expected ${len}`)
        }
        if (!edge && (data === null || isZeroPieces(data))) {
          const wantKeepAlive =
            typeof keepAlive === 'function'
              ? keepAlive(disk.id, i)
              : Date.now() - lastOutput > keepAlive
          // xapi writes an empty block with the current counter, then skips the zero block
          if (wantKeepAlive) yield* entry(EMPTY, i)
          counter++
        } else yield* entry(data ?? { pieces: [Buffer.alloc(len)] }, i)
        done += len
        opts.onProgress?.(done, total)
      }
    }
    yield TAR_END
  }

  // objectMode: chunks are handed over one by one (a byte-mode read() would concatenate them)
  const tar = Readable.from(generate(), { objectMode: true, highWaterMark: 16 })
  let out: Readable = tar
  const compression = opts.compression ?? 'none'
  if (compression !== 'none') {
    const z = compression === 'gzip' ? createGzip() : new CompressStream()
    out = pipeline(tar, z, () => {})
  }
  if (opts.signal) addAbortSignal(opts.signal, out)
  return Object.assign(out, { header, ids, totalDiskBytes: total })
}

/** Writes an XVA into `destination` (ended when done); rejects on error or abort. */
export async function writeXva(opts: XvaWriterOptions, destination: Writable): Promise<XvaHeader> {
  const xva = createXvaWriter(opts)
  await pipelineAsync(xva, destination, opts.signal ? { signal: opts.signal } : {})
  return xva.header
}
