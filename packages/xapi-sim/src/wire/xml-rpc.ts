import { formatXapiDate, parseXapiDate } from '@xapi-ops/xapi-formats'
import { FLOAT_FIELDS, I4, formatDouble } from './values.js'

/** A request that is not well-formed XML-RPC: xapi answers it with HTTP 500. */
export class XmlRpcParseError extends Error {
  override name = 'XmlRpcParseError'
}

// ---------------------------------------------------------------------------------------------
// Serializer: string building, xapi's encoding (untyped strings and ints, no <string>/<int>).

// eslint-disable-next-line no-control-regex -- xapi drops control characters
const NEEDS_ESCAPE = /[&<>"\u0000-\u0008\u000b\u000c\u000e-\u001f]/
// eslint-disable-next-line no-control-regex
const ESCAPE_ALL = /[&<>"\u0000-\u0008\u000b\u000c\u000e-\u001f]/g
const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' }

/** XML-escapes `& < > "` and drops control characters, as xapi does. */
export function escapeXml(s: string): string {
  if (!NEEDS_ESCAPE.test(s)) return s
  return s.replace(ESCAPE_ALL, (c) => ESCAPES[c] ?? '')
}

/**
 * DB records registered here have their encoding cached until {@link invalidateEncoding} (the
 * DB calls it on every change): `get_all_records` over thousands of VMs re-encodes only what
 * changed.
 */
const cacheable = new WeakSet<object>()
const encoded = new WeakMap<object, string>()

/** Makes `record`'s XML encoding cacheable (it must be changed only through the DB). */
export function registerCacheable(record: object): void {
  cacheable.add(record)
}

/** Whether `v` is a registered DB record. */
export function isCacheable(v: object): boolean {
  return cacheable.has(v)
}

const invalidations: ((record: object) => void)[] = []

/** Registers another encoding cache to drop on {@link invalidateEncoding}. */
export function onInvalidate(fn: (record: object) => void): void {
  invalidations.push(fn)
}

/** Drops the cached encodings of `record`. */
export function invalidateEncoding(record: object): void {
  encoded.delete(record)
  for (const fn of invalidations) fn(record)
}

function encodeInto(out: string[], v: unknown, asFloat: boolean): void {
  if (typeof v === 'object' && v !== null && cacheable.has(v)) {
    let xml = encoded.get(v)
    if (xml === undefined) {
      const parts: string[] = []
      encodeStruct(parts, v as Record<string, unknown>, asFloat)
      xml = parts.join('')
      encoded.set(v, xml)
    }
    out.push(xml)
    return
  }
  switch (typeof v) {
    case 'string':
      out.push('<value>', escapeXml(v), '</value>')
      return
    case 'number':
      if (asFloat || !Number.isInteger(v))
        out.push('<value><double>', formatDouble(v), '</double></value>')
      else out.push('<value>', String(v), '</value>')
      return
    case 'boolean':
      out.push(v ? '<value><boolean>1</boolean></value>' : '<value><boolean>0</boolean></value>')
      return
    case 'bigint':
      out.push('<value>', String(v), '</value>')
      return
    case 'undefined':
      out.push('<value></value>')
      return
    case 'object':
      if (v === null) {
        out.push('<value></value>')
      } else if (Array.isArray(v)) {
        out.push('<value><array><data>')
        for (const x of v) encodeInto(out, x, asFloat)
        out.push('</data></array></value>')
      } else if (v instanceof Date) {
        out.push('<value><dateTime.iso8601>', formatXapiDate(v), '</dateTime.iso8601></value>')
      } else if (v instanceof I4) {
        out.push('<value><i4>', String(v.value | 0), '</i4></value>')
      } else {
        encodeStruct(out, v as Record<string, unknown>, asFloat)
      }
      return
    default:
      out.push('<value></value>')
  }
}

function encodeStruct(out: string[], v: Record<string, unknown>, asFloat: boolean): void {
  out.push('<value><struct>')
  for (const k in v) {
    out.push('<member><name>', escapeXml(k), '</name>')
    encodeInto(out, v[k], asFloat || FLOAT_FIELDS.has(k))
    out.push('</member>')
  }
  out.push('</struct></value>')
}

/** Encodes one value as xapi's `<value>…</value>` fragment (also the format of `task.result`). */
export function encodeXmlRpcValue(v: unknown): string {
  const out: string[] = []
  encodeInto(out, v, false)
  return out.join('')
}

const HEAD = '<?xml version="1.0"?><methodResponse><params><param><value><struct>'
const TAIL = '</struct></value></param></params></methodResponse>'

/** `{Status: Success, Value}` envelope. */
export function xmlRpcSuccess(value: unknown): string {
  const out: string[] = [HEAD, '<member><name>Status</name><value>Success</value></member>']
  out.push('<member><name>Value</name>')
  encodeInto(out, value, false)
  out.push('</member>', TAIL)
  return out.join('')
}

/** A methodResponse whose single param is `value` itself (no Status envelope). */
export function xmlRpcBare(value: unknown): string {
  const out: string[] = ['<?xml version="1.0"?><methodResponse><params><param>']
  encodeInto(out, value, false)
  out.push('</param></params></methodResponse>')
  return out.join('')
}

/** `{Status: Failure, ErrorDescription: [code, ...params]}` envelope. */
export function xmlRpcFailure(description: readonly string[]): string {
  const out: string[] = [HEAD, '<member><name>Status</name><value>Failure</value></member>']
  out.push('<member><name>ErrorDescription</name>')
  encodeInto(out, description, false)
  out.push('</member>', TAIL)
  return out.join('')
}

// ---------------------------------------------------------------------------------------------
// Parser: a small tokenizer + recursive descent over methodCall (requests are small).

type Token =
  | { t: 'open'; name: string; self: boolean }
  | { t: 'close'; name: string }
  | { t: 'text'; text: string }

const TOKEN_RE =
  /<!\[CDATA\[([\s\S]*?)\]\]>|<!--[\s\S]*?-->|<\?[\s\S]*?\?>|<!DOCTYPE[^>]*>|<(\/?)([A-Za-z_][\w.:-]*)\s*((?:[^>"'/]|"[^"]*"|'[^']*'|\/(?!>))*)(\/?)>/g

function decodeEntities(s: string): string {
  if (!s.includes('&')) return s
  return s.replace(/&(#x[0-9a-fA-F]+|#\d+|amp|lt|gt|quot|apos);/g, (_, e: string) => {
    switch (e) {
      case 'amp':
        return '&'
      case 'lt':
        return '<'
      case 'gt':
        return '>'
      case 'quot':
        return '"'
      case 'apos':
        return "'"
    }
    const code = e[1] === 'x' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10)
    return String.fromCodePoint(code)
  })
}

function tokenize(xml: string): Token[] {
  const tokens: Token[] = []
  let last = 0
  let pendingText = ''
  const flushText = () => {
    if (pendingText !== '') tokens.push({ t: 'text', text: pendingText })
    pendingText = ''
  }
  TOKEN_RE.lastIndex = 0
  for (let m = TOKEN_RE.exec(xml); m; m = TOKEN_RE.exec(xml)) {
    const between = xml.slice(last, m.index)
    if (between.includes('<')) throw new XmlRpcParseError('malformed XML')
    pendingText += decodeEntities(between)
    last = TOKEN_RE.lastIndex
    if (m[1] !== undefined) {
      pendingText += m[1]
      continue
    }
    if (m[3] === undefined) continue // comment, PI, doctype
    flushText()
    if (m[2] === '/') tokens.push({ t: 'close', name: m[3] })
    else tokens.push({ t: 'open', name: m[3], self: m[5] === '/' })
  }
  const rest = xml.slice(last)
  if (rest.includes('<')) throw new XmlRpcParseError('malformed XML')
  pendingText += decodeEntities(rest)
  flushText()
  return tokens
}

class Parser {
  readonly tokens: Token[]
  pos = 0
  constructor(tokens: Token[]) {
    this.tokens = tokens
  }

  skipSpace(): void {
    for (;;) {
      const tok = this.tokens[this.pos]
      if (tok?.t === 'text' && tok.text.trim() === '') this.pos++
      else return
    }
  }

  open(name: string): boolean /* self-closing */ {
    this.skipSpace()
    const tok = this.tokens[this.pos]
    if (tok?.t !== 'open' || tok.name !== name) throw new XmlRpcParseError(`expected <${name}>`)
    this.pos++
    return tok.self
  }

  close(name: string): void {
    this.skipSpace()
    const tok = this.tokens[this.pos]
    if (tok?.t !== 'close' || tok.name !== name) throw new XmlRpcParseError(`expected </${name}>`)
    this.pos++
  }

  peekOpen(): string | undefined {
    this.skipSpace()
    const tok = this.tokens[this.pos]
    return tok?.t === 'open' ? tok.name : undefined
  }

  text(): string {
    const tok = this.tokens[this.pos]
    if (tok?.t === 'text') {
      this.pos++
      return tok.text
    }
    return ''
  }

  value(): unknown {
    if (this.open('value')) return ''
    const first = this.tokens[this.pos]
    if (first?.t === 'text') {
      const next = this.tokens[this.pos + 1]
      if (next?.t === 'close' && next.name === 'value') {
        this.pos += 2
        return first.text // untyped value = string
      }
    } else if (first?.t === 'close' && first.name === 'value') {
      this.pos++
      return ''
    }
    const type = this.peekOpen()
    if (type === undefined) throw new XmlRpcParseError('bad <value>')
    const v = this.typed(type)
    this.close('value')
    return v
  }

  scalarText(type: string): string {
    if (this.open(type)) return ''
    const s = this.text()
    this.close(type)
    return s
  }

  typed(type: string): unknown {
    switch (type) {
      case 'string':
        return this.scalarText(type)
      case 'int':
      case 'i4':
      case 'i8': {
        const s = this.scalarText(type).trim()
        if (!/^[-+]?\d+$/.test(s)) throw new XmlRpcParseError(`bad <${type}>`)
        return Number(s)
      }
      case 'boolean': {
        const s = this.scalarText(type).trim()
        if (s === '1' || s === 'true') return true
        if (s === '0' || s === 'false') return false
        throw new XmlRpcParseError('bad <boolean>')
      }
      case 'double': {
        const s = this.scalarText(type).trim()
        const n = Number(s)
        if (s === '' || Number.isNaN(n)) throw new XmlRpcParseError('bad <double>')
        return n
      }
      case 'dateTime.iso8601': {
        const s = this.scalarText(type)
        const d = parseXapiDate(s)
        if (!d) throw new XmlRpcParseError('bad <dateTime.iso8601>')
        return d
      }
      case 'base64':
        return Buffer.from(this.scalarText(type).replace(/\s+/g, ''), 'base64').toString('utf8')
      case 'nil':
        if (!this.open('nil')) this.close('nil')
        return null
      case 'array': {
        const out: unknown[] = []
        if (this.open('array')) return out
        if (!this.open('data')) {
          while (this.peekOpen() === 'value') out.push(this.value())
          this.close('data')
        }
        this.close('array')
        return out
      }
      case 'struct': {
        const out: Record<string, unknown> = {}
        if (this.open('struct')) return out
        while (this.peekOpen() === 'member') {
          this.open('member')
          const name = this.scalarText('name')
          out[name] = this.value()
          this.close('member')
        }
        this.close('struct')
        return out
      }
      default:
        throw new XmlRpcParseError(`unknown XML-RPC type <${type}>`)
    }
  }
}

/**
 * Parses an XML-RPC `methodCall`. Throws {@link XmlRpcParseError} for anything malformed,
 * including a missing `<params>` (xapi: `Xmlrpc.Parse_error`, HTTP 500).
 */
export function parseMethodCall(xml: string): { method: string; params: unknown[] } {
  const p = new Parser(tokenize(xml))
  p.open('methodCall')
  const method = p.scalarText('methodName').trim()
  if (method === '') throw new XmlRpcParseError('empty methodName')
  const params: unknown[] = []
  if (!p.open('params')) {
    while (p.peekOpen() === 'param') {
      if (p.open('param')) throw new XmlRpcParseError('empty <param>')
      params.push(p.value())
      p.close('param')
    }
    p.close('params')
  }
  p.close('methodCall')
  p.skipSpace()
  if (p.pos !== p.tokens.length) throw new XmlRpcParseError('trailing content')
  return { method, params }
}
