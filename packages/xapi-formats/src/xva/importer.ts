import { createHash } from 'node:crypto'
import type { Hash } from 'node:crypto'
import { Xxh64, xxh64 } from '@node-rs/xxhash'
import { XapiError } from '../errors.js'
import { XVA_BLOCK_SIZE } from './disk-hash.js'
import { DiskSink } from './disk-sink.js'
import { intField, parseOvaXml, xvaDisks } from './ova-xml.js'
import type { XvaDisk, XvaHeader } from './ova-xml.js'
import { extension, ocamlInt } from './names.js'
import { TarParser } from './tar.js'
import type { TarEntry } from './tar.js'

/*
 * Replays xapi's importer (import.ml `with_open_archive`, stream_vdi.ml `recv_all_vdi`) over a tar
 * entry stream: ova.xml first, then per disk in id order data/checksum pairs whose counters
 * increase, gaps filled with zeros of the first block's length, sizes landing on virtual_size.
 */

const MAX_OVA_XML = 256 * 1024 * 1024
const MAX_CHECKSUM_FILE = 4096

export interface ImporterHooks {
  force: boolean
  metadataOnly: boolean
  importerVersion?: { major: number; minor: number } | undefined
  onHeader?: ((header: XvaHeader, disks: XvaDisk[]) => void) | undefined
  onBlock?: ((disk: XvaDisk, index: number, data: Buffer) => void) | undefined
  /** Used when there is no `onBlock`: the block as views of the input (copy what you keep). */
  onBlockPieces?:
    ((disk: XvaDisk, index: number, pieces: readonly Buffer[], xxh64: bigint) => void) | undefined
}

export interface DiskResult {
  disk: XvaDisk
  hash: string
  /** Data entries read, keep-alives (zero-length entries) included. */
  entries: number
  keepAlives: number
}

const importError = (msg: string): XapiError => new XapiError('IMPORT_ERROR', [msg])

type State = 'ova' | 'data' | 'checksum' | 'trailer' | 'legacy-table'

export class XvaImporter {
  readonly parser: TarParser
  readonly #hooks: ImporterHooks
  #state: State = 'ova'
  header: XvaHeader | undefined
  disks: XvaDisk[] = []
  readonly results: DiskResult[] = []
  readonly checksumFailures: string[] = []
  checksumKinds = new Set<string>()
  /** Disk bytes received so far (gaps included) and their total. */
  diskBytes = 0
  totalDiskBytes = 0
  #exportVsn = 2
  // ova.xml
  #xml: Buffer[] = []
  #xmlLen = 0
  // current disk
  #diskIndex = -1
  #sink: DiskSink | undefined
  #firstLen = -1
  #lastSuffix = '-1'
  #entries = 0
  #keepAlives = 0
  // current block
  #name = ''
  #size = 0
  #gap = 0
  #buf: Buffer | undefined
  #fill = 0
  // a block read without copying: views of the input (kept until its checksum entry), hashed as they come
  #pieces: Buffer[] | undefined
  #xxh: Xxh64 | undefined
  #bigXxh: Xxh64 | undefined
  #bigSha: Hash | undefined
  #computed = ''
  #stored: Buffer[] = []
  #storedLen = 0

  constructor(hooks: ImporterHooks) {
    this.#hooks = hooks
    this.parser = new TarParser({
      entry: (e) => this.#entry(e),
      data: (c) => this.#data(c),
      end: () => this.#end(),
    })
  }

  /** True when everything expected was read (the end marker is checked by `finish`). */
  get done(): boolean {
    return this.#state === 'trailer'
  }

  /** At EOF of the tar stream: throws IMPORT_ERROR_PREMATURE_EOF unless the archive is complete. */
  finish(): void {
    if (!this.done || this.parser.midEntry || !this.parser.ended || this.parser.endBytes < 1024) {
      throw new XapiError('IMPORT_ERROR_PREMATURE_EOF', [])
    }
  }

  #entry(e: TarEntry): void {
    switch (this.#state) {
      case 'ova':
        if (e.name !== 'ova.xml')
          throw new XapiError('IMPORT_ERROR_UNEXPECTED_FILE', ['ova.xml', e.name])
        if (e.size > MAX_OVA_XML) throw importError(`ova.xml too large (${e.size} bytes)`)
        return
      case 'data':
        return this.#dataEntry(e)
      case 'checksum':
        return this.#checksumEntry(e)
      case 'legacy-table':
        this.#state = 'trailer'
        return
      case 'trailer':
        throw importError(`Invalid XVA file: unexpected entry ${e.name} after the last disk`)
    }
  }

  #data(c: Buffer): void {
    switch (this.#state) {
      case 'ova':
        this.#xml.push(Buffer.from(c))
        this.#xmlLen += c.length
        return
      case 'data':
        if (this.#pieces) {
          this.#pieces.push(c)
          this.#xxh!.update(c)
        } else if (this.#buf) {
          c.copy(this.#buf, this.#fill)
          this.#fill += c.length
        } else {
          this.#bigXxh!.update(c)
          this.#bigSha!.update(c)
          this.#sink!.write(c)
        }
        return
      case 'checksum':
        this.#storedLen += c.length
        if (this.#storedLen > MAX_CHECKSUM_FILE)
          throw importError(`checksum file ${this.#name} too large`)
        this.#stored.push(Buffer.from(c))
        return
      default:
        return
    }
  }

  #end(): void {
    if (this.#state === 'ova') this.#ovaDone()
    else if (this.#state === 'data') this.#state = 'checksum'
    else if (this.#state === 'checksum') this.#checksumDone()
  }

  #ovaDone(): void {
    const header = parseOvaXml(Buffer.concat(this.#xml, this.#xmlLen).toString('utf8'))
    this.#xml = []
    this.header = header
    const v = header.version
    this.#exportVsn = v.export_vsn === undefined ? 0 : intField(v.export_vsn)
    const want = this.#hooks.importerVersion
    if (want && v.xapi_major !== undefined && v.xapi_minor !== undefined) {
      const [maj, min] = [intField(v.xapi_major), intField(v.xapi_minor)]
      if (maj > want.major || (maj === want.major && min > want.minor)) {
        throw new XapiError('IMPORT_INCOMPATIBLE_VERSION', [])
      }
    }
    this.disks = this.#hooks.metadataOnly ? [] : xvaDisks(header)
    this.totalDiskBytes = this.disks.reduce((s, d) => s + d.virtualSize, 0)
    this.#hooks.onHeader?.(header, this.disks)
    this.#nextDisk()
  }

  #nextDisk(): void {
    if (this.#sink) {
      this.results.push({
        disk: this.disks[this.#diskIndex]!,
        hash: this.#sink.hash(),
        entries: this.#entries,
        keepAlives: this.#keepAlives,
      })
    }
    this.#sink = undefined
    for (;;) {
      const disk = this.disks[++this.#diskIndex]
      if (!disk) {
        this.#state = this.#exportVsn < 2 ? 'legacy-table' : 'trailer'
        return
      }
      const { onBlock, onBlockPieces } = this.#hooks
      this.#sink = new DiskSink(
        disk.id,
        disk.virtualSize,
        onBlock && ((i, d) => onBlock(disk, i, d)),
        onBlock === undefined && onBlockPieces
          ? (i, pieces, x) => onBlockPieces(disk, i, pieces, x)
          : undefined
      )
      this.#lastSuffix = '-1'
      this.#entries = this.#keepAlives = 0
      this.#state = 'data'
      if (disk.virtualSize > 0) return
      this.results.push({ disk, hash: this.#sink.hash(), entries: 0, keepAlives: 0 })
      this.#sink = undefined
    }
  }

  #dataEntry(e: TarEntry): void {
    const sink = this.#sink!
    if (this.#firstLen < 0) this.#firstLen = e.size
    if (!e.name.startsWith(sink.id)) {
      throw importError(`Invalid XVA file: expected a block of ${sink.id}, found ${e.name}`)
    }
    const suffix = e.name.slice(sink.id.length + 1)
    if (suffix <= this.#lastSuffix) {
      throw importError(
        `Invalid XVA file: block ${e.name} does not follow ${sink.id}/${this.#lastSuffix}`
      )
    }
    const gap = ocamlInt(suffix) - ocamlInt(this.#lastSuffix) - 1
    if (Number.isNaN(gap))
      throw importError(`Invalid XVA file: block name ${e.name} is not a counter`)
    this.#name = e.name
    this.#size = e.size
    this.#gap = gap > 0 ? gap * this.#firstLen : 0
    this.#lastSuffix = suffix
    this.#entries++
    if (e.size === 0) this.#keepAlives++
    if (this.#gap > 0) sink.zeros(this.#gap)
    if (sink.pos + e.size > sink.virtualSize) {
      throw importError(
        `Invalid XVA file: block ${e.name} goes past the virtual_size of ${sink.id}`
      )
    }
    this.#fill = 0
    this.#pieces = undefined
    if (e.size <= XVA_BLOCK_SIZE && this.#hooks.onBlock === undefined) {
      this.#pieces = []
      this.#xxh = new Xxh64()
      this.#bigXxh = this.#bigSha = undefined
    } else if (e.size <= XVA_BLOCK_SIZE) {
      const owned = this.#hooks.onBlock !== undefined
      this.#buf =
        owned || !this.#buf || this.#buf.length < XVA_BLOCK_SIZE
          ? Buffer.allocUnsafe(owned ? e.size : XVA_BLOCK_SIZE)
          : this.#buf
      this.#bigXxh = this.#bigSha = undefined
    } else {
      this.#buf = undefined
      this.#bigXxh = new Xxh64()
      this.#bigSha = createHash('sha1')
    }
  }

  #checksumEntry(e: TarEntry): void {
    const ext = extension(e.name)
    if (ext !== '.xxhash' && ext !== '.checksum')
      throw importError(`Found unsupported checksum file: ${e.name}`)
    this.checksumKinds.add(ext)
    const sink = this.#sink!
    if (this.#pieces) {
      const x = this.#xxh!.digest()
      if (ext === '.xxhash') this.#computed = x.toString(16).toUpperCase().padStart(16, '0')
      else {
        const h = createHash('sha1')
        for (const p of this.#pieces) h.update(p)
        this.#computed = h.digest('hex')
      }
      sink.writePieces(this.#pieces, this.#size, x)
      this.#pieces = undefined
    } else if (this.#buf) {
      const data = this.#buf.subarray(0, this.#size)
      const x = ext === '.xxhash' || this.#size === XVA_BLOCK_SIZE ? xxh64(data) : undefined
      this.#computed =
        ext === '.xxhash'
          ? x!.toString(16).toUpperCase().padStart(16, '0')
          : createHash('sha1').update(data).digest('hex')
      sink.write(data, x, this.#hooks.onBlock !== undefined && data.length === this.#buf.length)
    } else {
      this.#computed =
        ext === '.xxhash'
          ? this.#bigXxh!.digest().toString(16).toUpperCase().padStart(16, '0')
          : this.#bigSha!.digest('hex')
    }
    this.diskBytes += this.#gap + this.#size
    if (e.name.slice(0, e.name.length - ext.length) !== this.#name) {
      throw importError(
        `Invalid XVA file: checksum entry ${e.name} does not belong to block ${this.#name}`
      )
    }
    this.#stored = []
    this.#storedLen = 0
  }

  #checksumDone(): void {
    const stored = Buffer.concat(this.#stored).toString('latin1')
    if (this.#exportVsn > 0 && stored !== this.#computed) {
      const msg = `Block ${this.#name} checksum failed: original = ${stored}; recomputed = ${this.#computed}`
      if (!this.#hooks.force) throw importError(msg)
      this.checksumFailures.push(msg)
    }
    if (this.#sink!.complete) this.#nextDisk()
    else this.#state = 'data'
  }
}
