import http from 'node:http'
import https from 'node:https'
import { parseMethodCall } from '../src/wire/xml-rpc.js'

export type RawResponse = {
  status: number
  type: string | undefined
  body: string
  headers: http.IncomingHttpHeaders
}

const agent = new http.Agent({ keepAlive: true })
const tlsAgent = new https.Agent({ keepAlive: true, rejectUnauthorized: false })

/** POSTs a raw body (no client library: the wire is what is tested). */
export function post(
  url: string,
  path: string,
  body: string,
  type = 'text/xml',
  headers: Record<string, string> = {}
): Promise<RawResponse> {
  const u = new URL(path, url)
  const mod = u.protocol === 'https:' ? https : http
  return new Promise((resolve, reject) => {
    const req = mod.request(
      u,
      {
        method: 'POST',
        agent: u.protocol === 'https:' ? tlsAgent : agent,
        headers: { ...headers, 'content-type': type, 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            type: res.headers['content-type'],
            body: Buffer.concat(chunks).toString('utf8'),
            headers: res.headers,
          })
        )
        res.on('error', reject)
      }
    )
    req.on('error', reject)
    req.end(body)
  })
}

function xmlValue(v: unknown): string {
  if (typeof v === 'string')
    return `<value>${v.replace(/&/g, '&amp;').replace(/</g, '&lt;')}</value>`
  if (typeof v === 'number')
    return Number.isInteger(v)
      ? `<value><int>${v}</int></value>`
      : `<value><double>${v}</double></value>`
  if (typeof v === 'boolean') return `<value><boolean>${v ? 1 : 0}</boolean></value>`
  if (Array.isArray(v))
    return `<value><array><data>${v.map(xmlValue).join('')}</data></array></value>`
  if (v && typeof v === 'object')
    return `<value><struct>${Object.entries(v)
      .map(([k, x]) => `<member><name>${k}</name>${xmlValue(x)}</member>`)
      .join('')}</struct></value>`
  return '<value></value>'
}

/** Builds an XML-RPC methodCall body. */
export function methodCall(method: string, params: unknown[]): string {
  return `<?xml version="1.0"?><methodCall><methodName>${method}</methodName><params>${params
    .map((p) => `<param>${xmlValue(p)}</param>`)
    .join('')}</params></methodCall>`
}

/**
 * Decodes an XAPI XML-RPC response with our own parser (a methodResponse is parsed as if it were
 * a methodCall's single param).
 */
export function decodeResponse(body: string): {
  Status: string
  Value?: any
  ErrorDescription?: string[]
} {
  const asCall = body
    .replace(/<methodResponse>/, '<methodCall><methodName>x</methodName>')
    .replace(/<\/methodResponse>/, '</methodCall>')
  return parseMethodCall(asCall).params[0] as any
}

/** One XML-RPC call; resolves to the decoded envelope. */
export async function xmlCall(url: string, method: string, params: unknown[]) {
  const r = await post(url, '/', methodCall(method, params))
  if (r.status !== 200) throw new Error(`HTTP ${r.status}: ${r.body}`)
  return decodeResponse(r.body)
}

/** An XML-RPC call that must succeed; resolves to Value. */
export async function ok(url: string, method: string, ...params: unknown[]): Promise<any> {
  const r = await xmlCall(url, method, params)
  if (r.Status !== 'Success')
    throw new Error(`${method} failed: ${JSON.stringify(r.ErrorDescription)}`)
  return r.Value
}

/** An XML-RPC call that must fail; resolves to ErrorDescription. */
export async function failure(
  url: string,
  method: string,
  ...params: unknown[]
): Promise<string[]> {
  const r = await xmlCall(url, method, params)
  if (r.Status !== 'Failure')
    throw new Error(`${method} unexpectedly succeeded: ${JSON.stringify(r.Value)}`)
  return r.ErrorDescription!
}

export async function jsonCall(url: string, body: unknown) {
  const r = await post(url, '/jsonrpc', JSON.stringify(body), 'application/json')
  return { ...r, json: r.status === 200 ? JSON.parse(r.body) : undefined }
}

export async function login(url: string, user: string, password: string): Promise<string> {
  return ok(url, 'session.login_with_password', user, password, '1.0', 'xapi-sim tests')
}

/** Polls a task until it is no longer pending. */
export async function waitTask(
  url: string,
  session: string,
  task: string
): Promise<Record<string, any>> {
  for (;;) {
    const t = await ok(url, 'task.get_record', session, task)
    if (t.status !== 'pending') return t
    await new Promise((r) => setTimeout(r, 10))
  }
}

/** Runs `Async.<method>` and waits for its task; returns the task record. */
export async function runAsync(
  url: string,
  session: string,
  method: string,
  ...params: unknown[]
): Promise<any> {
  const task = await ok(url, `Async.${method}`, session, ...params)
  return { ref: task as string, ...(await waitTask(url, session, task)) }
}
