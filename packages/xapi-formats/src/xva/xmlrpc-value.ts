import { formatXapiDate, parseXapiDate } from '../xapi-date.js'

/*
 * XML-RPC values as ocaml-rpc writes and reads them in ova.xml: untyped `<value>text</value>` for
 * strings and integers, `<boolean>0|1</boolean>`, `<double>`, `<dateTime.iso8601>`, arrays, structs.
 */

export type XmlRpcValue =
  | string
  | number
  | bigint
  | boolean
  | Date
  | null
  | undefined
  | XmlRpcValue[]
  | { [key: string]: XmlRpcValue }

const ESC: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;' }
function escape(s: string): string {
  return s.replace(/[&<>]/g, (c) => ESC[c]!)
}

/** Serialises one value (no declaration, no envelope). */
export function serializeXmlRpcValue(v: unknown, out: string[] = []): string[] {
  if (v === null || v === undefined) out.push('<value></value>')
  else if (typeof v === 'string') out.push(`<value>${escape(v)}</value>`)
  else if (typeof v === 'bigint') out.push(`<value>${v}</value>`)
  else if (typeof v === 'number') {
    out.push(Number.isInteger(v) ? `<value>${v}</value>` : `<value><double>${v}</double></value>`)
  } else if (typeof v === 'boolean') out.push(`<value><boolean>${v ? 1 : 0}</boolean></value>`)
  else if (v instanceof Date)
    out.push(`<value><dateTime.iso8601>${formatXapiDate(v)}</dateTime.iso8601></value>`)
  else if (Array.isArray(v)) {
    out.push('<value><array><data>')
    for (const x of v) serializeXmlRpcValue(x, out)
    out.push('</data></array></value>')
  } else if (typeof v === 'object') {
    out.push('<value><struct>')
    for (const [k, x] of Object.entries(v)) {
      out.push(`<member><name>${escape(k)}</name>`)
      serializeXmlRpcValue(x, out)
      out.push('</member>')
    }
    out.push('</struct></value>')
  } else throw new TypeError(`cannot serialise ${typeof v} as XML-RPC`)
  return out
}

type Token = { tag: string; close: boolean; empty: boolean } | { text: string }

const TOKEN =
  /<\?[\s\S]*?\?>|<!--[\s\S]*?-->|<!\[CDATA\[([\s\S]*?)\]\]>|<(\/?)([A-Za-z_][\w.:-]*)[^>]*?(\/?)>|([^<]+)/g

function unescape(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]+|#\d+|lt|gt|amp|quot|apos);/g, (_, e: string) => {
    if (e[0] === '#')
      return String.fromCodePoint(e[1] === 'x' ? parseInt(e.slice(2), 16) : +e.slice(1))
    return { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" }[e]!
  })
}

/** Parses a document holding one XML-RPC `<value>`; throws `Error` on malformed input. */
export function parseXmlRpcValue(xml: string): XmlRpcValue {
  const tokens: Token[] = []
  for (const m of xml.matchAll(TOKEN)) {
    if (m[1] !== undefined) tokens.push({ text: m[1] })
    else if (m[3] !== undefined)
      tokens.push({ tag: m[3], close: m[2] === '/', empty: m[4] === '/' })
    else if (m[5] !== undefined) tokens.push({ text: unescape(m[5]) })
  }
  let i = 0
  const text = (): string => {
    let s = ''
    for (let t = tokens[i]; t && 'text' in t; t = tokens[++i]) s += t.text
    return s
  }
  const skipSpace = (): void => {
    if (text().trim() !== '') throw new Error('unexpected text in XML-RPC value')
  }
  const open = (name: string): boolean => {
    skipSpace()
    const t = tokens[i++]
    if (!t || 'text' in t || t.close || t.tag !== name) throw new Error(`expected <${name}>`)
    return t.empty
  }
  const close = (name: string): void => {
    skipSpace()
    const t = tokens[i++]
    if (!t || 'text' in t || !t.close || t.tag !== name) throw new Error(`expected </${name}>`)
  }
  const peek = (): { tag: string; close: boolean; empty: boolean } | undefined => {
    skipSpace()
    const t = tokens[i]
    return t && !('text' in t) ? t : undefined
  }
  const value = (): XmlRpcValue => {
    if (open('value')) return ''
    const body = text()
    const t = tokens[i]
    if (t && !('text' in t) && t.close && t.tag === 'value') {
      i++
      return body
    }
    if (body.trim() !== '') throw new Error('unexpected text in XML-RPC value')
    const typed = tokens[i]
    if (!typed || 'text' in typed || typed.close) throw new Error('malformed XML-RPC value')
    i++
    let v: XmlRpcValue
    const inner = (): string => {
      if (typed.empty) return ''
      const s = text()
      close(typed.tag)
      return s
    }
    switch (typed.tag) {
      case 'string':
        v = inner()
        break
      case 'int':
      case 'i4':
      case 'i8': {
        const s = inner().trim()
        if (!/^[+-]?\d+$/.test(s)) throw new Error(`bad integer ${s}`)
        v = Number.isSafeInteger(+s) ? +s : s
        break
      }
      case 'boolean': {
        const s = inner().trim()
        if (s !== '0' && s !== '1') throw new Error(`bad boolean ${s}`)
        v = s === '1'
        break
      }
      case 'double':
        v = parseFloat(inner())
        break
      case 'dateTime.iso8601': {
        // Kept as text when it is no date (the record then says what it holds).
        const s = inner().trim()
        v = parseXapiDate(s) ?? s
        break
      }
      case 'base64':
        v = Buffer.from(inner(), 'base64').toString('latin1')
        break
      case 'nil':
        if (!typed.empty) close('nil')
        v = null
        break
      case 'array': {
        const arr: XmlRpcValue[] = []
        if (!typed.empty && !open('data')) {
          while (peek()?.tag === 'value' && !peek()?.close) arr.push(value())
          close('data')
        }
        if (!typed.empty) close('array')
        v = arr
        break
      }
      case 'struct': {
        const obj: Record<string, XmlRpcValue> = Object.create(null)
        while (!typed.empty && peek()?.tag === 'member' && !peek()?.close) {
          open('member')
          const emptyName = open('name')
          const k = emptyName ? '' : text()
          if (!emptyName) close('name')
          obj[k] = value()
          close('member')
        }
        if (!typed.empty) close('struct')
        v = obj
        break
      }
      default:
        throw new Error(`unknown XML-RPC type <${typed.tag}>`)
    }
    close('value')
    return v
  }
  const v = value()
  skipSpace()
  if (i !== tokens.length) throw new Error('trailing data after XML-RPC value')
  return v
}
