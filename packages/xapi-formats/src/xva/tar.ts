/*
 * Minimal tar for XVA: V7 headers as ocaml-tar 2.x writes them (mode 0400, uid/gid 0, type '\0'),
 * and a push parser that accepts V7, ustar and GNU headers (base-256 sizes, ustar prefix).
 */

export const TAR_BLOCK = 512
/** Two zero blocks: the end-of-archive marker. */
export const TAR_END = Buffer.alloc(2 * TAR_BLOCK)

function octal(buf: Buffer, value: number, offset: number, width: number): void {
  // ocaml-tar: zero-padded octal on width-1 digits, then NUL
  buf.write(value.toString(8).padStart(width - 1, '0') + '\0', offset, width, 'latin1')
}

/** A V7 tar header for a regular file (ocaml-tar's defaults). */
export function tarHeader(name: string, size: number, mtime = 0): Buffer {
  const h = Buffer.alloc(TAR_BLOCK)
  if (Buffer.byteLength(name) > 99) throw new RangeError(`tar name too long: ${name}`)
  h.write(name, 0, 100, 'utf8')
  octal(h, 0o400, 100, 8)
  octal(h, 0, 108, 8)
  octal(h, 0, 116, 8)
  octal(h, size, 124, 12)
  octal(h, Math.floor(mtime), 136, 12)
  h.fill(0x20, 148, 156)
  let sum = 0
  for (let i = 0; i < TAR_BLOCK; i++) sum += h[i]!
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'latin1')
  return h
}

/** Zero bytes to the next 512-byte boundary after `size` bytes of data. */
export function tarPadding(size: number): number {
  return (TAR_BLOCK - (size % TAR_BLOCK)) % TAR_BLOCK
}

export interface TarEntry {
  name: string
  size: number
  type: string
}

function cstring(b: Buffer, start: number, len: number): string {
  const end = b.indexOf(0, start)
  return b.toString('utf8', start, end < 0 || end > start + len ? start + len : end)
}

function readNumber(b: Buffer, start: number, len: number): number {
  if (b[start]! & 0x80) {
    // GNU base-256
    let v = b[start]! & 0x7f
    for (let i = 1; i < len; i++) v = v * 256 + b[start + i]!
    return v
  }
  const s = b
    .toString('latin1', start, start + len)
    .replace(/\0.*$/s, '')
    .trim()
  if (s === '') return 0
  if (!/^[0-7]+$/.test(s)) throw new Error(`bad octal field ${JSON.stringify(s)}`)
  return parseInt(s, 8)
}

/** Parses one header block: null for an all-zero block; throws on a checksum mismatch. */
export function parseTarHeader(b: Buffer): TarEntry | null {
  let unsigned = 0
  let signed = 0
  for (let i = 0; i < TAR_BLOCK; i++) {
    const c = i >= 148 && i < 156 ? 0x20 : b[i]!
    unsigned += c
    signed += c > 127 ? c - 256 : c
  }
  if (unsigned === 8 * 0x20 && b.every((x) => x === 0)) return null
  const stored = readNumber(b, 148, 8)
  if (stored !== unsigned && stored !== signed) throw new Error('tar header checksum mismatch')
  let name = cstring(b, 0, 100)
  const magic = b.toString('latin1', 257, 262)
  if (magic === 'ustar') {
    const prefix = cstring(b, 345, 155)
    if (prefix) name = `${prefix}/${name}`
  }
  const t = b[156]!
  return { name, size: readNumber(b, 124, 12), type: t === 0 ? '0' : String.fromCharCode(t) }
}

export interface TarParserHandlers {
  /** A header (not the end marker); `data` calls follow for `size` bytes. */
  entry(e: TarEntry): void
  /** A piece of the current entry's data (a view into the input chunk: copy it to keep it). */
  data(chunk: Buffer): void
  /** The current entry's data is complete. */
  end(): void
}

/**
 * Push parser: `write()` chunks, `finish()` at EOF. Reports the entry stream and tracks the
 * end-of-archive marker; never buffers more than one header.
 */
export class TarParser {
  readonly #h: TarParserHandlers
  readonly #hdr = Buffer.alloc(TAR_BLOCK)
  #hdrLen = 0
  #dataLeft = 0
  #padLeft = 0
  #inEntry = false
  /** True once an all-zero header block was read (end of archive). */
  ended = false
  /** Bytes read from the start of the end marker on (at least 1024 in a complete archive). */
  endBytes = 0
  /** Tar bytes consumed. */
  bytes = 0

  constructor(handlers: TarParserHandlers) {
    this.#h = handlers
  }

  /** True when the stream stopped inside an entry or header. */
  get midEntry(): boolean {
    return this.#inEntry || this.#padLeft > 0 || this.#hdrLen > 0
  }

  write(chunk: Buffer): void {
    this.bytes += chunk.length
    let pos = 0
    while (pos < chunk.length) {
      if (this.#inEntry) {
        const n = Math.min(this.#dataLeft, chunk.length - pos)
        if (n > 0) this.#h.data(chunk.subarray(pos, pos + n))
        pos += n
        this.#dataLeft -= n
        if (this.#dataLeft === 0) {
          this.#inEntry = false
          this.#h.end()
        }
      } else if (this.#padLeft > 0) {
        const n = Math.min(this.#padLeft, chunk.length - pos)
        pos += n
        this.#padLeft -= n
      } else if (this.ended) {
        // the rest of the end marker and any record padding: ignored, as tar does
        this.endBytes += chunk.length - pos
        pos = chunk.length
      } else {
        const n = Math.min(TAR_BLOCK - this.#hdrLen, chunk.length - pos)
        chunk.copy(this.#hdr, this.#hdrLen, pos, pos + n)
        this.#hdrLen += n
        pos += n
        if (this.#hdrLen === TAR_BLOCK) {
          this.#hdrLen = 0
          this.#header()
        }
      }
    }
  }

  #header(): void {
    const e = parseTarHeader(this.#hdr)
    if (e === null) {
      this.endBytes = TAR_BLOCK
      this.ended = true
      return
    }
    this.#dataLeft = e.size
    this.#padLeft = tarPadding(e.size)
    this.#inEntry = true
    this.#h.entry(e)
    if (e.size === 0) {
      this.#inEntry = false
      this.#h.end()
    }
  }
}
