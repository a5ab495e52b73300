import { formatXapiDate } from '../xapi-date.js'
import { decodeXmlRpcValue } from '../xml-rpc-decode.js'

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

/**
 * Parses a document holding one XML-RPC `<value>` (ova.xml) into record values: as
 * `decodeXmlRpcValue`, with what a record keeps as text kept as text (integers beyond 2^53,
 * `<base64>` as latin1, a `<dateTime.iso8601>` that is no date). Throws `XmlRpcSyntaxError` when
 * malformed.
 */
export function parseXmlRpcValue(xml: string): XmlRpcValue {
  return toRecordValue(decodeXmlRpcValue(xml, { invalidDate: 'text' }))
}

function toRecordValue(v: unknown): XmlRpcValue {
  if (typeof v === 'bigint') return String(v)
  if (Buffer.isBuffer(v)) return v.toString('latin1')
  if (Array.isArray(v)) return v.map(toRecordValue)
  if (v !== null && typeof v === 'object' && !(v instanceof Date)) {
    const out: Record<string, XmlRpcValue> = Object.create(null) as Record<string, XmlRpcValue>
    for (const [k, x] of Object.entries(v)) out[k] = toRecordValue(x)
    return out
  }
  return v as XmlRpcValue
}
