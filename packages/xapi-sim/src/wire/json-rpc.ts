import { formatXapiDate } from '@xapi-ops/xapi-formats'
import { I4 } from './values.js'
import { isCacheable, onInvalidate } from './xml-rpc.js'

function replacer(this: Record<string, unknown>, key: string, value: unknown): unknown {
  const orig = this[key]
  if (orig instanceof Date) return formatXapiDate(orig)
  if (value instanceof I4) return value.value
  if (typeof value === 'bigint') return Number(value)
  return value
}

const jsonCache = new WeakMap<object, string>()

onInvalidate((record) => jsonCache.delete(record))

function encodeInto(out: string[], v: unknown): void {
  if (typeof v !== 'object' || v === null || v instanceof Date || v instanceof I4) {
    out.push(JSON.stringify({ v }, replacer).slice(5, -1))
    return
  }
  if (isCacheable(v)) {
    let json = jsonCache.get(v)
    if (json === undefined) jsonCache.set(v, (json = JSON.stringify(v, replacer)))
    out.push(json)
    return
  }
  if (Array.isArray(v)) {
    out.push('[')
    v.forEach((x, i) => {
      if (i > 0) out.push(',')
      encodeInto(out, x === undefined ? null : x)
    })
    out.push(']')
    return
  }
  out.push('{')
  let first = true
  for (const [k, x] of Object.entries(v)) {
    if (x === undefined) continue
    out.push(first ? '' : ',', JSON.stringify(k), ':')
    encodeInto(out, x)
    first = false
  }
  out.push('}')
}

/**
 * JSON text of a value as xapi's JSON-RPC sends it (dates as `YYYYMMDDTHH:MM:SSZ` strings). DB
 * records are cached like their XML (see `registerCacheable`).
 */
export function encodeJson(value: unknown): string {
  const out: string[] = []
  encodeInto(out, value)
  return out.join('')
}

export type JsonRpcRequest = { method: string; params: unknown[]; id: unknown; v2: boolean }

/**
 * Parses a JSON-RPC v1/v2 request as ocaml-rpc's `version_id_and_call_of_string` does; throws a
 * `SyntaxError`/`TypeError` when it is not one (xapi then answers HTTP 500): `jsonrpc` absent
 * (v1) or `"2.0"`; v1 needs a `params` array, v2 takes none, null, an array or one object; `id`
 * must be an integer or a string (no notifications).
 */
export function parseJsonRpc(body: string): JsonRpcRequest {
  const req = JSON.parse(body) as unknown
  if (typeof req !== 'object' || req === null || Array.isArray(req))
    throw new TypeError('Invalid request body')
  const r = req as Record<string, unknown>
  if (typeof r.method !== 'string') throw new TypeError("Invalid field 'method' in request body")
  if (r.jsonrpc !== undefined && r.jsonrpc !== '2.0')
    throw new TypeError("Invalid field 'jsonrpc' in request body")
  const v2 = r.jsonrpc === '2.0'
  let params: unknown[]
  if (Array.isArray(r.params)) params = r.params
  else if (v2 && (r.params === undefined || r.params === null)) params = []
  else if (v2 && typeof r.params === 'object') params = [r.params]
  else throw new TypeError("Invalid field 'params' in request body")
  const id = r.id
  if (!(typeof id === 'string' || (typeof id === 'number' && Number.isInteger(id))))
    throw new TypeError("Invalid field 'id' in request body")
  return { method: r.method, params, id, v2 }
}

/** Response body for a JSON-RPC request: v1 `{result, error, id}`, v2 `{jsonrpc, result|error, id}`. */
export function jsonRpcResponse(
  req: { id: unknown; v2: boolean },
  outcome: { ok: true; value: unknown } | { ok: false; description: readonly string[] }
): string {
  if (req.v2) {
    return outcome.ok
      ? encodeJson({ jsonrpc: '2.0', result: outcome.value ?? '', id: req.id })
      : encodeJson({
          jsonrpc: '2.0',
          error: { code: 1, message: outcome.description[0], data: outcome.description.slice(1) },
          id: req.id,
        })
  }
  return outcome.ok
    ? encodeJson({ result: outcome.value ?? '', error: null, id: req.id })
    : encodeJson({ result: null, error: outcome.description, id: req.id })
}
