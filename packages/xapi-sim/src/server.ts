import http, { type IncomingMessage, type ServerResponse } from 'node:http'
import https from 'node:https'
import type { AddressInfo } from 'node:net'
import { createSimContext, type SimContext } from './context.js'
import { handleHttpAction } from './http/index.js'
import { dispatch, type Outcome } from './rpc/dispatch.js'
import type { HostRuntime, SimState } from './state.js'
import { jsonRpcResponse, parseJsonRpc } from './wire/json-rpc.js'
import { parseMethodCall, xmlRpcBare, xmlRpcFailure, xmlRpcSuccess } from './wire/xml-rpc.js'

const MAX_BODY = 64 * 2 ** 20
const XML_PATHS = new Set(['/', '/RPC2', '/xmlrpc'])
const JSON_PATHS = new Set(['/jsonrpc', '/json'])

/** api_server.ml adds these to every RPC answer (besides `Access-Control-Allow-Origin: *`). */
const RPC_HEADERS = { 'access-control-allow-headers': 'X-Requested-With' }

const INTERNAL_ERROR_HTML =
  '<html><body><h1>HTTP 500 internal server error</h1>An unexpected error occurred; ' +
  'please wait a while and try again. If the problem persists, please contact your support ' +
  'representative.<h1> Additional information </h1>Xmlrpc.Parse_error</body></html>'

function readBody(req: IncomingMessage): Promise<string | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = []
    let size = 0
    req.on('data', (c: Buffer) => {
      size += c.length
      if (size > MAX_BODY) {
        resolve(undefined)
        req.destroy()
        return
      }
      chunks.push(c)
    })
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
    req.on('error', () => resolve(undefined))
  })
}

function send(
  res: ServerResponse,
  status: number,
  type: string,
  body: string,
  extra: Record<string, string> = {}
): void {
  if (res.destroyed) return
  const buf = Buffer.from(body, 'utf8')
  res.writeHead(status, {
    'content-type': type,
    'content-length': buf.length,
    'access-control-allow-origin': '*',
    ...extra,
  })
  res.end(buf)
}

/**
 * Since Dec 2023 xapi answers HOST_IS_SLAVE with the master's certificate thumbprint when the
 * request asks for it (`x-xenapi-request-host-certificate-thumbprint: sha-256:master`).
 */
function thumbprintHeaders(
  state: SimState,
  host: HostRuntime,
  req: IncomingMessage,
  outcome: Outcome
): Record<string, string> {
  const asked = req.headers['x-xenapi-request-host-certificate-thumbprint']
  const master = state.masterOf(host.pool).certificate?.fingerprint
  if (!asked || outcome.ok || outcome.description[0] !== 'HOST_IS_SLAVE' || !master) return {}
  return { 'x-xenapi-response-host-certificate-thumbprint': master }
}

async function handleRpc(
  state: SimState,
  host: HostRuntime,
  req: IncomingMessage,
  res: ServerResponse,
  json: boolean,
  local: boolean
) {
  const body = await readBody(req)
  if (body === undefined) return send(res, 500, 'text/html', INTERNAL_ERROR_HTML)
  if (json) {
    let rpc
    try {
      rpc = parseJsonRpc(body)
    } catch {
      return send(
        res,
        500,
        'text/html',
        INTERNAL_ERROR_HTML.replace('Xmlrpc.Parse_error', 'Jsonrpc parse error')
      )
    }
    if (state.faults.shouldDrop(rpc.method)) return void req.socket.destroy()
    const outcome = await dispatch(state, host, rpc.method, rpc.params, 'json-rpc', { local })
    const extra = thumbprintHeaders(state, host, req, outcome)
    return send(res, 200, 'application/json', jsonRpcResponse(rpc, outcome), {
      ...RPC_HEADERS,
      ...extra,
    })
  }
  let call
  try {
    call = parseMethodCall(body)
  } catch (e) {
    state.record({
      method: '',
      params: [],
      host: host.name,
      transport: 'xml-rpc',
      durationMs: 0,
      outcome: 'error',
      error: ['PARSE_ERROR', e instanceof Error ? e.message : String(e)],
    })
    return send(res, 500, 'text/html', INTERNAL_ERROR_HTML)
  }
  if (state.faults.shouldDrop(call.method)) return void req.socket.destroy()
  const outcome = await dispatch(state, host, call.method, call.params, 'xml-rpc', { local })
  // api_server.ml: system.listMethods answers the bare array, without the Status envelope
  const answer = !outcome.ok
    ? xmlRpcFailure(outcome.description)
    : call.method === 'system.listMethods'
      ? xmlRpcBare(outcome.value)
      : xmlRpcSuccess(outcome.value)
  send(res, 200, 'text/xml', answer, {
    ...RPC_HEADERS,
    ...thumbprintHeaders(state, host, req, outcome),
  })
}

/**
 * The request listener of one host: RPC paths, CORS preflight, else the HTTP actions. `local`:
 * the unix socket (logins there need no password, as on xapi's local socket).
 */
export function createRequestListener(
  state: SimState,
  host: HostRuntime,
  ctx: SimContext,
  local = false
) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const url = req.url ?? '/'
    const q = url.indexOf('?')
    const path = q < 0 ? url : url.slice(0, q)
    // A host that was shut down (host.shutdown) does not answer.
    const metrics = host.pool.db.get(host.pool.db.get(host.ref)?.metrics as string)
    if (metrics?.live === false) return void req.socket.destroy()
    const run = async () => {
      if (req.method === 'OPTIONS' && (XML_PATHS.has(path) || JSON_PATHS.has(path))) {
        // Http_svr.respond_to_options: the requested headers plus X-Requested-With, method PUT
        const asked = req.headers['access-control-request-headers']
        res.writeHead(200, {
          'access-control-allow-origin': '*',
          'access-control-allow-headers': asked ? `${asked}, X-Requested-With` : 'X-Requested-With',
          'access-control-allow-methods': 'PUT',
          'content-length': 0,
        })
        return void res.end()
      }
      if (req.method === 'POST' && XML_PATHS.has(path))
        return handleRpc(state, host, req, res, false, local)
      if (req.method === 'POST' && JSON_PATHS.has(path))
        return handleRpc(state, host, req, res, true, local)
      return handleHttpAction(ctx, req, res)
    }
    run().catch(() => {
      if (!res.headersSent)
        send(
          res,
          500,
          'text/html',
          INTERNAL_ERROR_HTML.replace('Xmlrpc.Parse_error', 'internal error')
        )
      else res.destroy()
    })
  }
}

export type Listening = { server: http.Server; port: number; close(): Promise<void> }

/** Starts the HTTP(S) server of a host on 127.0.0.1:`port` (0 = any). */
export async function listenHost(
  state: SimState,
  host: HostRuntime,
  opts: { port: number; tls?: { key: string; cert: string } }
): Promise<Listening> {
  const server = opts.tls
    ? https.createServer({ key: opts.tls.key, cert: opts.tls.cert })
    : http.createServer()
  server.keepAliveTimeout = 30_000
  // xapi has no request timeout: an import body may take hours (node's default cuts at 5 min)
  server.requestTimeout = 0
  server.on('clientError', (_err, socket) => socket.destroy())
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(opts.port, '127.0.0.1', () => {
      server.off('error', reject)
      resolve()
    })
  })
  const port = (server.address() as AddressInfo).port
  return { server, port, close: () => closeServer(server) }
}

/** Attaches the request listener once the host's URL is known. */
export function serveHost(state: SimState, host: HostRuntime, server: http.Server): SimContext {
  const ctx = createSimContext(state, host)
  server.on('request', createRequestListener(state, host, ctx))
  return ctx
}

/** Listens on a unix socket with the listener of `host` (dom0-style local access). */
export async function listenUnix(
  state: SimState,
  host: HostRuntime,
  ctx: SimContext,
  socketPath: string
) {
  const server = http.createServer(
    { requestTimeout: 0 },
    createRequestListener(state, host, ctx, true)
  )
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(socketPath, () => {
      server.off('error', reject)
      resolve()
    })
  })
  return { server, close: () => closeServer(server) }
}

function closeServer(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve())
    server.closeAllConnections()
  })
}
