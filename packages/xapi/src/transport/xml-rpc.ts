import { createRequire } from 'node:module'
import xmlrpc from 'xmlrpc'
import { XapiError, XapiProtocolError, XapiTransportError } from '../errors.js'
import { decodeMethodResponse } from './codec.js'
import {
  describeTarget,
  httpPost,
  type HttpResponse,
  type PostOptions,
  type RequestTarget,
} from './request.js'

// Requests are serialised by the `xmlrpc` package; its defaults differ from XAPI's encoding, so
// values are wrapped in CustomTypes: untyped strings (a bare `<value/>` for ''; xen-api decodes
// `<string/>` as undefined), `<i8>` integers (`<int>` is 32-bit), and dates in UTC with `Z`.
const require = createRequire(import.meta.url)
const serializer = require('xmlrpc/lib/serializer.js') as {
  serializeMethodCall(method: string, params: unknown[]): string
}
xmlrpc.dateFormatter.setOpts({
  local: false,
  colons: true,
  hyphens: false,
  ms: false,
  offset: false,
})

type XmlNode = { txt(text: string): XmlNode; ele(name: string): XmlNode }

class Untyped extends xmlrpc.CustomType {
  override serialize(xml: XmlNode): XmlNode {
    return this.raw === '' ? xml : xml.txt(this.raw)
  }
}
class I8 extends xmlrpc.CustomType {
  override tagName = 'i8'
}

// eslint-disable-next-line no-control-regex
const INVALID_XML_CHARS = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g

function toXmlrpcValue(v: unknown): unknown {
  switch (typeof v) {
    case 'string':
      return new Untyped(v.replace(INVALID_XML_CHARS, ''))
    case 'number':
      if (Number.isInteger(v)) return new I8(String(v))
      if (!Number.isFinite(v)) throw new TypeError(`Cannot send ${v} as an XML-RPC double`)
      return v
    case 'bigint':
      return new I8(String(v))
    case 'undefined':
      return null
    case 'object':
      if (v === null || v instanceof Date || Buffer.isBuffer(v)) return v
      if (Array.isArray(v)) return v.map(toXmlrpcValue)
      if (v instanceof Map) return toXmlrpcValue(Object.fromEntries(v))
      return Object.fromEntries(
        Object.entries(v)
          .filter(([, item]) => item !== undefined)
          .map(([k, item]) => [k, toXmlrpcValue(item)])
      )
    default:
      return v
  }
}

/** Serialises an XML-RPC `methodCall` with XAPI's value encoding. */
export function encodeMethodCall(method: string, params: readonly unknown[]): string {
  return serializer.serializeMethodCall(method, params.map(toXmlrpcValue))
}

/** Whether an HTTP content type is an XML one. */
export function isXmlContentType(contentType: string): boolean {
  return /^\s*(text|application)\/xml\b/i.test(contentType)
}

/**
 * One XAPI call over XML-RPC (POST `<base>/`). Resolves with `Value`; throws `XapiError` for a
 * `Failure` envelope, `XapiTransportError` for a status other than 200 or a non-XML answer,
 * `XapiProtocolError` for malformed XML.
 */
export async function xmlRpcCall(
  base: URL,
  method: string,
  params: readonly unknown[],
  opts: PostOptions
): Promise<unknown> {
  const target: RequestTarget = { base, path: base.protocol === 'unix:' ? '/' : base.pathname }
  const res = await httpPost(target, encodeMethodCall(method, params), 'text/xml', opts)
  if (res.status !== 200) {
    throw new XapiTransportError(
      `HTTP ${res.status} from ${describeTarget(res.target)} for ${method}${describeBody(res.contentType, res.body)}`,
      { status: res.status }
    )
  }
  if (res.contentType !== '' && !isXmlContentType(res.contentType)) {
    throw new XapiTransportError(
      `Unexpected content type \`${res.contentType}\` from ${describeTarget(res.target)} for ${method}: expected text/xml`,
      { status: res.status }
    )
  }
  const response = decodeMethodResponse(res.body.toString('utf8'))
  if (response.fault) {
    const f = response.value as { faultCode?: unknown; faultString?: unknown } | null
    throw new XapiProtocolError(
      `XML-RPC fault from ${describeTarget(res.target)} for ${method}: ${String(f?.faultCode)} ${String(f?.faultString)}`
    )
  }
  return withThumbprint(res, () => unwrapEnvelope(response.value, method))
}

/** Runs `decode`, attaching the response's master thumbprint to a HOST_IS_SLAVE error. */
export function withThumbprint<T>(res: HttpResponse, decode: () => T): T {
  try {
    return decode()
  } catch (error) {
    if (
      res.thumbprint !== undefined &&
      error instanceof XapiError &&
      error.code === 'HOST_IS_SLAVE'
    ) {
      error.masterFingerprint = res.thumbprint
    }
    throw error
  }
}

/** Unwraps XAPI's `{Status, Value | ErrorDescription}` envelope. */
export function unwrapEnvelope(value: unknown, method: string): unknown {
  if (typeof value !== 'object' || value === null || !('Status' in value)) {
    // system.* introspection may answer without the envelope.
    if (method.startsWith('system.')) return value
    throw new XapiProtocolError(`Response to ${method} has no Status envelope`)
  }
  const envelope = value as { Status: unknown; Value?: unknown; ErrorDescription?: unknown }
  if (envelope.Status === 'Success') return envelope.Value === undefined ? '' : envelope.Value
  if (envelope.Status === 'Failure') throw XapiError.fromErrorDescription(envelope.ErrorDescription)
  throw new XapiProtocolError(
    `Response to ${method} has an unknown Status \`${String(envelope.Status)}\``
  )
}

/** A short, tag-free excerpt of an error body for messages. */
export function describeBody(contentType: string, body: Buffer): string {
  const text = body
    .subarray(0, 2_000)
    .toString('utf8')
    .replace(/<(script|style)[^]*?<\/\1>/gi, ' ')
    .replace(/<[^>]*>/g, ' ')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, 160)
    .replace(/OpaqueRef:[^\s<>"',)]+/g, 'OpaqueRef:***')
  return `${contentType ? ` (${contentType.split(';')[0]})` : ''}${text ? `: ${text}` : ''}`
}
