/*
 * Decoding XAPI's XML-RPC (ocaml-rpc `Xmlrpc`): strings/refs/enums/int64 untyped
 * (`<value>text</value>`), `<boolean>1|0</boolean>`, `<double>`, `<dateTime.iso8601>` in UTC with
 * `Z`, `<array><data>`, `<struct><member>`. A hand-written scanner: big `get_all_records` answers
 * are several MB and a SAX parser is several times slower. Used for RPC answers, task results and
 * the XVA's `ova.xml`.
 */
import { parseXapiDate } from './xapi-date.js'

/** Malformed XML-RPC; the message says where (refs in the excerpt hidden). */
export class XmlRpcSyntaxError extends Error {
  override readonly name = 'XmlRpcSyntaxError'
}

/** Options of {@link decodeXmlRpcValue}. */
export type DecodeOptions = {
  /** A `<dateTime.iso8601>` that is no date: refused (the default), or kept as its text. */
  readonly invalidDate?: 'fail' | 'text'
}

const ENTITY = /&(?:#(\d+)|#x([0-9a-f]+)|(amp|lt|gt|quot|apos));/gi
const NAMED: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }

function decodeEntities(text: string): string {
  if (!text.includes('&')) return text
  return text.replace(ENTITY, (m, dec?: string, hex?: string, name?: string) => {
    if (dec !== undefined) return String.fromCodePoint(Number(dec))
    if (hex !== undefined) return String.fromCodePoint(parseInt(hex, 16))
    return NAMED[name!.toLowerCase()] ?? m
  })
}

/** Hides opaque refs (which may be session refs) in text shown to users. */
export function redactRefs(text: string): string {
  return text.replace(/OpaqueRef:[^\s<>"',)]+/g, 'OpaqueRef:***')
}

class XmlScanner {
  readonly s: string
  readonly keepBadDates: boolean
  i = 0
  constructor(s: string, options: DecodeOptions = {}) {
    this.s = s
    this.keepBadDates = options.invalidDate === 'text'
  }

  fail(what: string): never {
    // The excerpt may come from a login answer: never show a ref in it.
    const from = Math.max(0, this.i - 200, this.s.lastIndexOf('>', Math.max(0, this.i - 30)) + 1)
    const near = redactRefs(this.s.slice(from, this.i + 30)).replace(/\s+/g, ' ')
    throw new XmlRpcSyntaxError(`Malformed XML-RPC: ${what} at offset ${this.i} (near \`${near}\`)`)
  }

  /** Skips whitespace, comments and processing instructions. */
  skip(): void {
    const s = this.s
    for (;;) {
      let c = s.charCodeAt(this.i)
      while (c === 32 || c === 10 || c === 13 || c === 9) c = s.charCodeAt(++this.i)
      if (c !== 60 /* < */) return
      const n = s.charCodeAt(this.i + 1)
      if (n === 63 /* ? */) {
        const end = s.indexOf('?>', this.i)
        if (end < 0) this.fail('unterminated processing instruction')
        this.i = end + 2
      } else if (n === 33 /* ! */ && s.startsWith('<!--', this.i)) {
        const end = s.indexOf('-->', this.i)
        if (end < 0) this.fail('unterminated comment')
        this.i = end + 3
      } else if (n === 33 && s.startsWith('<!DOCTYPE', this.i)) {
        const end = s.indexOf('>', this.i)
        if (end < 0) this.fail('unterminated DOCTYPE')
        this.i = end + 1
      } else return
    }
  }

  /** Reads `<name ...>` or `<name/>`; returns the name and whether it self-closes. */
  open(): { name: string; empty: boolean } {
    this.skip()
    const s = this.s
    if (s.charCodeAt(this.i) !== 60 || s.charCodeAt(this.i + 1) === 47)
      this.fail('expected an opening tag')
    const gt = s.indexOf('>', this.i)
    if (gt < 0) this.fail('unterminated tag')
    const empty = s.charCodeAt(gt - 1) === 47
    const inner = s.slice(this.i + 1, empty ? gt - 1 : gt)
    const sp = inner.search(/\s/)
    this.i = gt + 1
    return { name: sp < 0 ? inner : inner.slice(0, sp), empty }
  }

  expectOpen(name: string): boolean {
    const tag = this.open()
    if (tag.name !== name) {
      this.i -= 1
      this.fail(`expected <${name}>, found <${tag.name}>`)
    }
    return tag.empty
  }

  /** Whether the next tag is a closing one (does not consume it). */
  atClose(): boolean {
    this.skip()
    return this.s.charCodeAt(this.i) === 60 && this.s.charCodeAt(this.i + 1) === 47
  }

  close(name: string): void {
    this.skip()
    const s = this.s
    if (!s.startsWith('</', this.i)) this.fail(`expected </${name}>`)
    const gt = s.indexOf('>', this.i)
    if (gt < 0 || s.slice(this.i + 2, gt).trim() !== name) this.fail(`expected </${name}>`)
    this.i = gt + 1
  }

  /** Character data up to the next tag (CDATA sections included), entities decoded. */
  text(): string {
    const s = this.s
    let out = ''
    for (;;) {
      const lt = s.indexOf('<', this.i)
      if (lt < 0) this.fail('unexpected end of document')
      out += decodeEntities(s.slice(this.i, lt))
      this.i = lt
      if (s.startsWith('<![CDATA[', lt)) {
        const end = s.indexOf(']]>', lt)
        if (end < 0) this.fail('unterminated CDATA')
        out += s.slice(lt + 9, end)
        this.i = end + 3
      } else if (s.startsWith('<!--', lt)) {
        const end = s.indexOf('-->', lt)
        if (end < 0) this.fail('unterminated comment')
        this.i = end + 3
      } else return out
    }
  }

  /** Parses a `<value>` element (the opening tag included). */
  value(): unknown {
    if (this.expectOpen('value')) return ''
    const raw = this.text()
    if (this.s.charCodeAt(this.i + 1) === 47) {
      this.close('value')
      return raw // untyped: a string
    }
    if (raw.trim() !== '') this.fail('text before a typed value')
    const { name, empty } = this.open()
    const v = this.typed(name, empty)
    this.close('value')
    return v
  }

  typed(name: string, empty: boolean): unknown {
    switch (name) {
      case 'string':
        return empty ? '' : this.leaf(name)
      case 'int':
      case 'i4':
      case 'i8': {
        const t = empty ? '' : this.leaf(name).trim()
        if (!/^[+-]?\d+$/.test(t)) this.fail(`invalid <${name}> \`${t}\``)
        const n = Number(t)
        return Number.isSafeInteger(n) ? n : BigInt(t)
      }
      case 'boolean': {
        const t = empty ? '' : this.leaf(name).trim()
        if (t === '1' || t === 'true') return true
        if (t === '0' || t === 'false') return false
        return this.fail(`invalid <boolean> \`${t}\``)
      }
      case 'double': {
        const t = empty ? '' : this.leaf(name).trim().toLowerCase()
        // OCaml's %.16g prints inf/-inf/nan.
        const n = t === 'inf' ? Infinity : t === '-inf' ? -Infinity : t === 'nan' ? NaN : Number(t)
        if (t === '' || (Number.isNaN(n) && t !== 'nan')) this.fail(`invalid <double> \`${t}\``)
        return n
      }
      case 'dateTime.iso8601': {
        const t = empty ? '' : this.leaf(name)
        const date = parseXapiDate(t)
        if (date !== undefined) return date
        return this.keepBadDates ? t.trim() : this.fail(`invalid <dateTime.iso8601> \`${t}\``)
      }
      case 'base64':
        return Buffer.from(empty ? '' : this.leaf(name).replace(/\s+/g, ''), 'base64')
      case 'nil':
      case 'ex:nil':
        if (!empty) this.close(name)
        return null
      case 'array':
        return empty ? [] : this.array()
      case 'struct':
        return empty ? {} : this.struct()
      default:
        return this.fail(`unknown XML-RPC type <${name}>`)
    }
  }

  leaf(name: string): string {
    const t = this.text()
    this.close(name)
    return t
  }

  array(): unknown[] {
    const out: unknown[] = []
    if (!this.expectOpen('data')) {
      while (!this.atClose()) out.push(this.value())
      this.close('data')
    }
    this.close('array')
    return out
  }

  struct(): Record<string, unknown> {
    const out: Record<string, unknown> = {}
    while (!this.atClose()) {
      this.expectOpen('member')
      this.expectOpen('name')
      const key = this.text()
      this.close('name')
      const v = this.value()
      this.close('member')
      if (key === '__proto__')
        Object.defineProperty(out, key, {
          value: v,
          enumerable: true,
          writable: true,
          configurable: true,
        })
      else out[key] = v
    }
    this.close('struct')
    return out
  }

  end(): void {
    this.skip()
    if (this.i < this.s.length) this.fail('trailing content')
  }
}

/**
 * Decodes one XML-RPC `<value>` fragment, e.g. a task `result`:
 * `'<value><array><data><value>OpaqueRef:a</value></data></array></value>'` → `['OpaqueRef:a']`.
 * Integers beyond 2^53 decode to bigints, `<base64>` to Buffers, `<nil/>` to null. An empty
 * string (a void result) decodes to `''`. Throws {@link XmlRpcSyntaxError} when malformed.
 */
export function decodeXmlRpcValue(xml: string, options?: DecodeOptions): unknown {
  if (xml.trim() === '') return ''
  const p = new XmlScanner(xml, options)
  const v = p.value()
  p.end()
  return v
}

/** The outcome of an XML-RPC `methodResponse`: a value or an XML-RPC `<fault>`. */
export type MethodResponse = { fault: false; value: unknown } | { fault: true; value: unknown }

/** Parses a whole `<methodResponse>` document; throws {@link XmlRpcSyntaxError} when malformed. */
export function decodeMethodResponse(xml: string): MethodResponse {
  const p = new XmlScanner(xml.charCodeAt(0) === 0xfeff ? xml.slice(1) : xml)
  if (p.expectOpen('methodResponse')) p.fail('empty <methodResponse>')
  const { name, empty } = p.open()
  let res: MethodResponse
  if (name === 'params' && !empty) {
    p.expectOpen('param')
    res = { fault: false, value: p.value() }
    p.close('param')
    if (!p.atClose()) p.fail('more than one <param>')
    p.close('params')
  } else if (name === 'fault' && !empty) {
    res = { fault: true, value: p.value() }
    p.close('fault')
  } else return p.fail(`unexpected <${name}> in <methodResponse>`)
  p.close('methodResponse')
  p.end()
  return res
}
