// Tiny servers for transport edge cases the simulator does not model (HTML 500s, hangs, several
// TLS certificates). Everything else is tested against @xapi-ops/xapi-sim.
import { execFileSync } from 'node:child_process'
import { createHash, X509Certificate } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import { createRequire } from 'node:module'
import type { AddressInfo, Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { encodeXmlRpcValue } from '../../src/index.js'

const require = createRequire(import.meta.url)
const { Deserializer } = {
  Deserializer: require('xmlrpc/lib/deserializer.js') as new () => {
    deserializeMethodCall(
      stream: Readable,
      cb: (err: Error | null, method: string, params: unknown[]) => void
    ): void
  },
}

export type TestServer = {
  readonly url: string
  readonly port: number
  /** Requests seen: method, path and (decoded) RPC method name. */
  readonly requests: RequestEntry[]
  /** TCP connections accepted (TLS servers: before the handshake). */
  connections: number
  close(): Promise<void>
}

export type RequestEntry = { method: string; path: string; rpc?: string; params?: unknown[] }
export type Handler = (
  req: http.IncomingMessage,
  res: http.ServerResponse,
  body: Buffer,
  entry: RequestEntry
) => void

export async function startServer(
  handler: Handler,
  tls?: { key: string; cert: string }
): Promise<TestServer> {
  const requests: TestServer['requests'] = []
  const listener = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const chunks: Buffer[] = []
    const entry: RequestEntry = { method: req.method ?? '', path: req.url ?? '' }
    requests.push(entry)
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      handler(req, res, Buffer.concat(chunks), entry)
    })
  }
  const server = tls ? https.createServer(tls, listener) : http.createServer(listener)
  const sockets = new Set<Socket>()
  const result = { connections: 0 } as { connections: number }
  server.on('connection', (s) => {
    result.connections++
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  return Object.assign(result, {
    url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    port,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  })
}

/** A minimal XAPI speaking both protocols, answering from `methods` (session ref prepended). */
export function xapiHandler(methods: Record<string, (params: unknown[]) => unknown>): Handler {
  return (req, res, body, entry) => {
    const answer = (params: unknown[], rpc: string) => {
      Object.assign(entry, { rpc, params })
      const fn = methods[rpc]
      if (!fn) return { Status: 'Failure', ErrorDescription: ['MESSAGE_METHOD_UNKNOWN', rpc] }
      try {
        return { Status: 'Success', Value: fn(params) }
      } catch (e) {
        return { Status: 'Failure', ErrorDescription: (e as { description: string[] }).description }
      }
    }
    if (req.url === '/jsonrpc') {
      const call = JSON.parse(body.toString()) as { method: string; params: unknown[]; id: number }
      const out = answer(call.params, call.method)
      res.setHeader('content-type', 'application/json')
      res.end(
        JSON.stringify(
          out.Status === 'Success'
            ? { jsonrpc: '2.0', result: out.Value, id: call.id }
            : {
                jsonrpc: '2.0',
                error: {
                  code: 1,
                  message: out.ErrorDescription![0],
                  data: out.ErrorDescription!.slice(1),
                },
                id: call.id,
              }
        )
      )
      return
    }
    new Deserializer().deserializeMethodCall(Readable.from([body]), (err, method, params) => {
      res.setHeader('content-type', 'text/xml')
      if (err) {
        res.statusCode = 500
        res.end()
        return
      }
      const out = answer(params, method)
      res.end(
        `<?xml version="1.0"?><methodResponse><params><param>${encodeXmlRpcValue(out)}</param></params></methodResponse>`
      )
    })
  }
}

/** Throw inside an `xapiHandler` method to answer a Failure. */
export function failure(...description: string[]): Error {
  return Object.assign(new Error(description[0]), { description })
}

/** A fresh self-signed certificate for 127.0.0.1 (openssl CLI) with its SHA-256 fingerprint. */
export function makeCertificate(): { key: string; cert: string; fingerprint: string } {
  const dir = mkdtempSync(join(tmpdir(), 'xapi-cert-'))
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '2',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' }
    )
    const cert = readFileSync(join(dir, 'cert.pem'), 'utf8')
    const key = readFileSync(join(dir, 'key.pem'), 'utf8')
    return { key, cert, fingerprint: new X509Certificate(cert).fingerprint256 }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex')
}
