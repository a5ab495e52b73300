import http from 'node:http'
import https from 'node:https'
import { XapiClientError, XapiTransportError, XAPI_CLIENT_ERROR_CODES } from '../errors.js'
import { formatBaseUrl } from '../options.js'

export type HttpResponse = {
  readonly status: number
  readonly contentType: string
  readonly body: Buffer
  /** Where the request was finally answered (after redirects). */
  readonly target: RequestTarget
  /** `x-xenapi-response-host-certificate-thumbprint` (sent with HOST_IS_SLAVE when asked). */
  readonly thumbprint?: string
}

export type PostOptions = {
  readonly agentFor: (url: URL) => http.Agent | https.Agent
  readonly signal: AbortSignal
  readonly headers?: Readonly<Record<string, string>>
}

const MAX_REDIRECTS = 5
const THUMBPRINT_HEADER = 'x-xenapi-response-host-certificate-thumbprint'
const REDIRECTS = new Set([301, 302, 303, 307, 308])

/** Where to send a request: a base URL (`https:`, `http:` or `unix:/socket`) and an HTTP path. */
export type RequestTarget = { readonly base: URL; readonly path: string }

/** `https://host:port/path` or `unix:/socket/path` + path, for messages (never with credentials). */
export function describeTarget(t: RequestTarget): string {
  return t.base.protocol === 'unix:'
    ? `${formatBaseUrl(t.base)} (${t.path})`
    : `${formatBaseUrl(new URL(t.base.origin))}${t.path}`
}

/**
 * POSTs `body`, following redirects (XAPI may move requests between pool members) with the same
 * agents and TLS policy. Resolves with any status: callers decide what is an error.
 */
export async function httpPost(
  target: RequestTarget,
  body: string,
  contentType: string,
  opts: PostOptions
): Promise<HttpResponse> {
  let current = target
  // A string body goes out in one write with the head (a Buffer would be a separate writev chunk).
  const payload = body
  const length = Buffer.byteLength(body, 'utf8')
  for (let hop = 0; ; hop++) {
    const res = await postOnce(current, payload, length, contentType, opts)
    const location = res.location
    if (!REDIRECTS.has(res.status) || location === undefined) return res
    if (hop >= MAX_REDIRECTS) {
      throw new XapiTransportError(
        `Too many redirects (more than ${MAX_REDIRECTS}) from ${describeTarget(target)}`,
        {
          status: res.status,
          code: XAPI_CLIENT_ERROR_CODES.TOO_MANY_REDIRECTS,
        }
      )
    }
    const unix = current.base.protocol === 'unix:'
    const next = new URL(
      location,
      unix ? `http://localhost${current.path}` : new URL(current.path, current.base)
    )
    if (next.protocol !== 'https:' && next.protocol !== 'http:') {
      throw new XapiTransportError(
        `Refusing redirect to a ${next.protocol} URL from ${describeTarget(target)}`,
        {
          status: res.status,
        }
      )
    }
    const stay = unix && next.host === 'localhost'
    current = {
      base: stay ? current.base : new URL(next.origin),
      path: `${next.pathname}${next.search}`,
    }
  }
}

function postOnce(
  target: RequestTarget,
  payload: string,
  length: number,
  contentType: string,
  opts: PostOptions
): Promise<HttpResponse & { location?: string }> {
  const url = target.base
  const unix = url.protocol === 'unix:'
  const request = url.protocol === 'https:' ? https.request : http.request
  return new Promise((resolve, reject) => {
    const req = request(
      {
        method: 'POST',
        protocol: unix ? 'http:' : url.protocol,
        hostname: unix ? 'localhost' : url.hostname.replace(/^\[|\]$/g, ''),
        port: unix ? undefined : url.port || undefined,
        path: target.path,
        agent: opts.agentFor(url),
        headers: {
          'content-type': contentType,
          'content-length': length,
          'user-agent': 'xapi-ops',
          ...opts.headers,
        },
      },
      (res) => {
        const body = new BodyCollector(Number(res.headers['content-length']))
        res.on('data', (chunk: Buffer) => body.push(chunk))
        res.on('error', (err) => reject(wrapSocketError(err, target, opts.signal)))
        res.on('close', () => {
          if (!res.complete) reject(wrapSocketError(dropped(), target, opts.signal))
        })
        res.on('end', () => {
          resolve({
            status: res.statusCode ?? 0,
            contentType: String(res.headers['content-type'] ?? ''),
            body: body.result(),
            target,
            ...(res.headers.location !== undefined && { location: res.headers.location }),
            ...(typeof res.headers[THUMBPRINT_HEADER] === 'string' && {
              thumbprint: res.headers[THUMBPRINT_HEADER],
            }),
          })
        })
      }
    )
    req.on('error', (err) => reject(wrapSocketError(err, target, opts.signal)))
    // Not `request({ signal })`: that watches the request's end with five listeners per call.
    const { signal } = opts
    const onAbort = () => req.destroy(signal.reason as Error)
    if (signal.aborted) return onAbort()
    signal.addEventListener('abort', onAbort, { once: true })
    req.once('close', () => signal.removeEventListener('abort', onAbort))
    req.end(payload, 'utf8')
  })
}

function wrapSocketError(err: Error, target: RequestTarget, signal: AbortSignal): unknown {
  if (signal.aborted) return signal.reason
  if (err instanceof XapiClientError) return err // TLS verification failures from the agent
  const code = (err as NodeJS.ErrnoException).code
  const where = describeTarget(target)
  if (code !== undefined && TLS_CODES.test(code)) {
    return new XapiTransportError(`TLS handshake with ${where} failed (${code}): ${err.message}`, {
      cause: err,
    })
  }
  const hint =
    code === 'ECONNREFUSED'
      ? 'connection refused: is XAPI listening there?'
      : code === 'ENOTFOUND' || code === 'EAI_AGAIN'
        ? 'host name not found'
        : code === 'EHOSTUNREACH' || code === 'ENETUNREACH'
          ? 'host unreachable'
          : code === 'ECONNRESET' || code === 'EPIPE'
            ? 'connection dropped by the server'
            : code === 'ENOENT'
              ? 'socket not found'
              : err.message
  return new XapiTransportError(`Cannot reach ${where}: ${hint}${code ? ` (${code})` : ''}`, {
    cause: err,
  })
}

/**
 * Gathers a response body. With a Content-Length (xapi sends one) chunks are copied into one
 * buffer as they come: big `get_all_records` answers are not held twice for a final concat.
 */
class BodyCollector {
  #buffer: Buffer | undefined
  #length = 0
  #chunks: Buffer[] = []

  constructor(expected: number) {
    if (Number.isSafeInteger(expected) && expected > 64 * 1024 && expected <= MAX_PREALLOC) {
      this.#buffer = Buffer.allocUnsafe(expected)
    }
  }

  push(chunk: Buffer): void {
    if (this.#buffer && this.#length + chunk.length <= this.#buffer.length) {
      chunk.copy(this.#buffer, this.#length)
    } else {
      if (this.#buffer) this.#chunks.push(this.#buffer.subarray(0, this.#length))
      this.#buffer = undefined
      this.#chunks.push(chunk)
    }
    this.#length += chunk.length
  }

  result(): Buffer {
    if (this.#buffer) return this.#buffer.subarray(0, this.#length)
    return this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks)
  }
}

const MAX_PREALLOC = 1024 * 1024 * 1024

function dropped(): Error {
  return Object.assign(new Error('response truncated'), { code: 'ECONNRESET' })
}

const TLS_CODES = /^(ERR_SSL_|ERR_TLS_|EPROTO$)/
