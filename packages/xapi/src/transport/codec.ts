import {
  XmlRpcSyntaxError,
  decodeMethodResponse as decodeResponse,
  decodeXmlRpcValue as decodeValue,
  formatXapiDate,
  type MethodResponse,
} from '@xapi-ops/xapi-formats'
import { XapiProtocolError } from '../errors.js'

/** Malformed XML-RPC from the server is a protocol error of the client's. */
function asProtocolError<T>(decode: () => T): T {
  try {
    return decode()
  } catch (error) {
    if (error instanceof XmlRpcSyntaxError) throw new XapiProtocolError(error.message)
    throw error
  }
}

/**
 * Decodes one XML-RPC `<value>` fragment, e.g. a task `result`:
 * `'<value><array><data><value>OpaqueRef:a</value></data></array></value>'` → `['OpaqueRef:a']`.
 * An empty string (a void result) decodes to `''`. Throws `XapiProtocolError` when malformed.
 */
export function decodeXmlRpcValue(xml: string): unknown {
  return asProtocolError(() => decodeValue(xml))
}

/** Parses a whole `<methodResponse>` document; throws `XapiProtocolError` when malformed. */
export function decodeMethodResponse(xml: string): MethodResponse {
  return asProtocolError(() => decodeResponse(xml))
}

// XML 1.0 forbids most control characters; xapi drops them too.
// eslint-disable-next-line no-control-regex
const INVALID_XML_CHARS = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g

/** Escapes text for XML content (and strips characters XML cannot carry). */
export function escapeXml(text: string): string {
  let t = text.replace(INVALID_XML_CHARS, '')
  if (/[&<>"]/.test(t))
    t = t.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
  return t
}

/**
 * Encodes a value XAPI-style: strings untyped (the empty string as a bare `<value/>`), integers
 * and bigints as `<i8>`, other numbers as `<double>`, `<boolean>1|0</boolean>`, dates as
 * `<dateTime.iso8601>YYYYMMDDTHH:MM:SSZ</dateTime.iso8601>`, `null` as `<nil/>`, Buffers as
 * `<base64>`, arrays and objects as `<array>` / `<struct>` (undefined members are skipped).
 */
export function encodeXmlRpcValue(v: unknown): string {
  const out: string[] = []
  encodeInto(v, out)
  return out.join('')
}

function encodeInto(v: unknown, out: string[]): void {
  switch (typeof v) {
    case 'string':
      out.push(v === '' ? '<value/>' : `<value>${escapeXml(v)}</value>`)
      return
    case 'boolean':
      out.push(v ? '<value><boolean>1</boolean></value>' : '<value><boolean>0</boolean></value>')
      return
    case 'number':
      if (Number.isInteger(v)) out.push(`<value><i8>${v}</i8></value>`)
      else if (Number.isFinite(v)) out.push(`<value><double>${v}</double></value>`)
      else throw new TypeError(`Cannot encode ${v} as an XML-RPC double`)
      return
    case 'bigint':
      out.push(`<value><i8>${v}</i8></value>`)
      return
    case 'undefined':
      out.push('<value><nil/></value>')
      return
    case 'object':
      break
    default:
      throw new TypeError(`Cannot encode a ${typeof v} as an XML-RPC value`)
  }
  if (v === null) out.push('<value><nil/></value>')
  else if (v instanceof Date)
    out.push(`<value><dateTime.iso8601>${formatXapiDate(v)}</dateTime.iso8601></value>`)
  else if (Buffer.isBuffer(v)) out.push(`<value><base64>${v.toString('base64')}</base64></value>`)
  else if (Array.isArray(v)) {
    out.push('<value><array><data>')
    for (const item of v) encodeInto(item, out)
    out.push('</data></array></value>')
  } else if (v instanceof Map) {
    encodeInto(Object.fromEntries(v), out)
  } else {
    out.push('<value><struct>')
    for (const [k, item] of Object.entries(v)) {
      if (item === undefined) continue
      out.push(`<member><name>${escapeXml(k)}</name>`)
      encodeInto(item, out)
      out.push('</member>')
    }
    out.push('</struct></value>')
  }
}
