import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { SimContext } from '../context.js'

/** Query parameters and cookies of a transfer request. */
export type HttpArgs = {
  path: string
  query: URLSearchParams
  cookies: Map<string, string>
  /** Cookie first, then query (xapi's `lookup_param_of_req`). */
  param(name: string): string | undefined
  /** Query only. */
  flag(name: string): boolean
}

export function parseArgs(req: IncomingMessage): HttpArgs {
  const url = new URL(req.url ?? '/', 'http://sim')
  const cookies = new Map<string, string>()
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=')
    if (eq > 0) cookies.set(part.slice(0, eq).trim(), decodeURIComponent(part.slice(eq + 1).trim()))
  }
  const query = url.searchParams
  return {
    path: url.pathname,
    query,
    cookies,
    param: (name) => cookies.get(name) ?? query.get(name) ?? undefined,
    flag: (name) => query.get(name) === 'true',
  }
}

const HTML_500 = (info: string): string =>
  '<html><body><h1>HTTP 500 internal server error</h1>An unexpected error occurred; please wait a ' +
  'while and try again. If the problem persists, please contact your support representative.' +
  `<h1> Additional information </h1>${info.replace(/[<>&]/g, '')}</body></html>`

function sendHtml(
  res: ServerResponse,
  status: number,
  reason: string,
  body: string,
  extra: Record<string, string> = {}
): void {
  if (res.headersSent || res.destroyed) return void res.destroy()
  res.writeHead(status, reason, {
    ...extra,
    'content-type': 'text/html',
    connection: 'close',
    'content-length': Buffer.byteLength(body),
  })
  res.end(body)
}

/** `HTTP/1.1 500 Internal Error` with xapi's HTML page naming the error. */
export function send500(res: ServerResponse, description: readonly string[]): void {
  sendHtml(
    res,
    500,
    'Internal Error',
    HTML_500(`Server_error(${description[0]}, [ ${description.slice(1).join('; ')} ])`)
  )
}

export function send401(res: ServerResponse, realm: string): void {
  sendHtml(res, 401, 'Unauthorised', '<html><body><h1>HTTP 401 unauthorised</h1></body></html>', {
    'www-authenticate': `Basic realm="${realm}"`,
  })
}

export function send403(res: ServerResponse): void {
  sendHtml(res, 403, 'Forbidden', '<html><body><h1>HTTP 403 forbidden</h1></body></html>')
}

export function send400(res: ServerResponse): void {
  sendHtml(res, 400, 'Bad Request', '<html><body><h1>HTTP 400 bad request</h1></body></html>')
}

export function send404(res: ServerResponse): void {
  sendHtml(res, 404, 'Not Found', '<html><body><h1>HTTP 404 not found</h1></body></html>')
}

/** `302 Found` to the same path and query on another host (cookies are not carried, as in xapi). */
export function sendRedirect(res: ServerResponse, hostUrl: string, req: IncomingMessage): void {
  if (res.headersSent) return void res.destroy()
  res.writeHead(302, 'Found', {
    location: hostUrl + (req.url ?? '/'),
    connection: 'close',
    'content-length': 0,
  })
  res.end()
}

/** Writes a raw response head (status line and headers as given) on the socket. */
export function writeRawHead(socket: Socket, statusLine: string, headers: string[]): void {
  socket.write(`${statusLine}\r\n${headers.map((h) => `${h}\r\n`).join('')}\r\n`)
}

/** The session of a request, or why there is none (for the 401). */
export type Auth =
  { ok: true; sessionRef: string; basic: boolean } | { ok: false; code: string; params: string[] }

/** xapi's order: `session_id` (cookie, then query), then HTTP Basic. */
export function authenticate(ctx: SimContext, req: IncomingMessage, args: HttpArgs): Auth {
  const sid = args.param('session_id')
  if (sid !== undefined) {
    if (ctx.sessions.get(sid)) return { ok: true, sessionRef: sid, basic: false }
    return { ok: false, code: 'SESSION_AUTHENTICATION_FAILED', params: ['', 'invalid session'] }
  }
  const m = /^Basic\s+(\S+)/i.exec(req.headers.authorization ?? '')
  if (m) {
    const decoded = Buffer.from(m[1]!, 'base64').toString('utf8')
    const colon = decoded.indexOf(':')
    const user = colon < 0 ? decoded : decoded.slice(0, colon)
    try {
      const s = ctx.sessions.login(user, colon < 0 ? '' : decoded.slice(colon + 1))
      return { ok: true, sessionRef: s.ref, basic: true }
    } catch {
      return {
        ok: false,
        code: 'SESSION_AUTHENTICATION_FAILED',
        params: [user, 'Authentication failure'],
      }
    }
  }
  return { ok: false, code: 'SESSION_AUTHENTICATION_FAILED', params: ['', 'no credentials'] }
}

/** `code` and `params` of anything thrown (XapiFailure, XapiError), else INTERNAL_ERROR. */
export function describeError(e: unknown): string[] {
  const x = e as { code?: unknown; params?: unknown; message?: unknown }
  if (typeof x?.code === 'string' && Array.isArray(x.params) && /^[A-Z][A-Z0-9_]*$/.test(x.code)) {
    return [x.code, ...x.params.map(String)]
  }
  return ['INTERNAL_ERROR', typeof x?.message === 'string' ? x.message : String(e)]
}

/** xapi's Server header value. */
export const SERVER = 'xapi/25.39'
