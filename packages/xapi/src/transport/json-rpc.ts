import { XapiError, XapiProtocolError, XapiTransportError } from '../errors.js'
import { formatXapiDate } from '@xapi-ops/xapi-formats'
import { describeTarget, httpPost, type HttpResponse, type PostOptions } from './request.js'
import { describeBody } from './xml-rpc.js'

let nextId = 0

function replacer(this: Record<string, unknown>, key: string, value: unknown): unknown {
  const original = this[key]
  if (original instanceof Date) return formatXapiDate(original)
  if (typeof value === 'bigint')
    return Number.isSafeInteger(Number(value)) ? Number(value) : String(value)
  if (Buffer.isBuffer(original)) return original.toString('base64')
  if (original instanceof Map) return Object.fromEntries(original)
  return value
}

/** Whether `v` holds values JSON.stringify would not encode the XAPI way. */
function needsReplacer(v: unknown): boolean {
  if (typeof v === 'bigint') return true
  if (typeof v !== 'object' || v === null) return false
  if (v instanceof Date || v instanceof Map || Buffer.isBuffer(v)) return true
  return Array.isArray(v) ? v.some(needsReplacer) : Object.values(v).some(needsReplacer)
}

/** Serialises a JSON-RPC 2.0 request (dates as XAPI's `YYYYMMDDTHH:MM:SSZ`). */
export function encodeJsonRpcRequest(method: string, params: readonly unknown[]): string {
  const request = { jsonrpc: '2.0', method, params, id: ++nextId }
  return params.some(needsReplacer) ? JSON.stringify(request, replacer) : JSON.stringify(request)
}

/** Whether an HTTP content type is JSON. */
export function isJsonContentType(contentType: string): boolean {
  return /^\s*application\/json\b/i.test(contentType)
}

/** POSTs a JSON-RPC request to `<base>/jsonrpc`; resolves with the raw HTTP response. */
export function postJsonRpc(
  base: URL,
  method: string,
  params: readonly unknown[],
  opts: PostOptions
): Promise<HttpResponse> {
  const prefix = base.protocol === 'unix:' ? '' : base.pathname.replace(/\/+$/, '')
  return httpPost(
    { base, path: `${prefix}/jsonrpc` },
    encodeJsonRpcRequest(method, params),
    'application/json',
    opts
  )
}

/** Whether `res` shows the server does not speak JSON-RPC (the `auto` fallback condition). */
export function isJsonRpcUnsupported(res: HttpResponse): boolean {
  return res.status < 200 || res.status >= 300 || !isJsonContentType(res.contentType)
}

/**
 * Decodes a JSON-RPC answer (v2 `error: {code, message, data}` or v1 `error: [code, ...params]`).
 * Throws `XapiError` for XAPI failures, `XapiTransportError` / `XapiProtocolError` otherwise.
 */
export function decodeJsonRpcResponse(res: HttpResponse, method: string): unknown {
  if (res.status !== 200) {
    throw new XapiTransportError(
      `HTTP ${res.status} from ${describeTarget(res.target)} for ${method}${describeBody(res.contentType, res.body)}`,
      { status: res.status }
    )
  }
  if (!isJsonContentType(res.contentType)) {
    throw new XapiTransportError(
      `Unexpected content type \`${res.contentType}\` from ${describeTarget(res.target)} for ${method}: expected application/json`,
      { status: res.status }
    )
  }
  let body: unknown
  try {
    body = JSON.parse(res.body.toString('utf8'))
  } catch (cause) {
    throw new XapiProtocolError(
      `Malformed JSON-RPC response from ${describeTarget(res.target)} for ${method}`,
      {
        cause,
      }
    )
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new XapiProtocolError(`JSON-RPC response to ${method} is not an object`)
  }
  const { error, result } = body as { error?: unknown; result?: unknown }
  if (error !== undefined && error !== null) throw jsonRpcError(error, method)
  // A void method may come back without `result` (undefined dropped by a JSON serialiser).
  if (!('result' in body)) return ''
  return result
}

function jsonRpcError(error: unknown, method: string): Error {
  if (Array.isArray(error)) return XapiError.fromErrorDescription(error)
  if (typeof error === 'object' && error !== null) {
    const { message, data } = error as { code?: unknown; message?: unknown; data?: unknown }
    if (typeof message === 'string') {
      const params = Array.isArray(data) ? data : data === undefined || data === null ? [] : [data]
      return XapiError.fromErrorDescription([message, ...params])
    }
  }
  return new XapiProtocolError(
    `Malformed JSON-RPC error in the response to ${method}: ${JSON.stringify(error)}`
  )
}
