import { I4, formatXapiDate } from './values.js'

function replacer(this: Record<string, unknown>, key: string, value: unknown): unknown {
  const orig = this[key]
  if (orig instanceof Date) return formatXapiDate(orig)
  if (value instanceof I4) return value.value
  if (typeof value === 'bigint') return Number(value)
  return value
}

/** JSON text of a value as xapi's JSON-RPC sends it (dates as `YYYYMMDDTHH:MM:SSZ` strings). */
export function encodeJson(value: unknown): string {
  return JSON.stringify(value, replacer)
}

export type JsonRpcRequest = { method: string; params: unknown[]; id: unknown; v2: boolean }

/** Parses a JSON-RPC v1/v2 request; throws a `SyntaxError`/`TypeError` when it is not one. */
export function parseJsonRpc(body: string): JsonRpcRequest {
  const req = JSON.parse(body) as unknown
  if (typeof req !== 'object' || req === null || Array.isArray(req))
    throw new TypeError('not an object')
  const r = req as Record<string, unknown>
  if (typeof r.method !== 'string') throw new TypeError('no method')
  const params = r.params === undefined ? [] : r.params
  if (!Array.isArray(params)) throw new TypeError('params is not an array')
  return { method: r.method, params, id: r.id ?? null, v2: r.jsonrpc === '2.0' }
}

/** Response body for a JSON-RPC request: v1 `{result, error, id}`, v2 `{jsonrpc, result|error, id}`. */
export function jsonRpcResponse(
  req: { id: unknown; v2: boolean },
  outcome: { ok: true; value: unknown } | { ok: false; description: readonly string[] }
): string {
  if (req.v2) {
    return outcome.ok
      ? encodeJson({ jsonrpc: '2.0', result: outcome.value, id: req.id })
      : encodeJson({
          jsonrpc: '2.0',
          error: { code: 1, message: outcome.description[0], data: outcome.description.slice(1) },
          id: req.id,
        })
  }
  return outcome.ok
    ? encodeJson({ result: outcome.value, error: null, id: req.id })
    : encodeJson({ result: null, error: outcome.description, id: req.id })
}
