import net from 'node:net'
import type tls from 'node:tls'
import { XapiClientError, XapiTransportError } from '../errors.js'
import { ReadRing } from './read-ring.js'
import { describeTarget, socketHost, socketPort, type Target } from './url.js'

/**
 * One raw HTTP/1.0 connection to a pool member. Export and import bypass node:http, which can
 * neither send a close-delimited PUT body (it would use chunked encoding, which xapi refuses)
 * nor half-close the socket to end it while still reading the response.
 */
export type Connection = {
  readonly target: Target
  /** Where the bytes go: the TLS socket for `https:`, else the TCP (or unix) socket. */
  readonly stream: net.Socket
  /** The socket underneath, reset (RST) on abort so a close-delimited body is not taken as complete. */
  readonly raw: net.Socket
  /** The first socket error, kept so that none goes unhandled. */
  error: Error | undefined
  /** Set when the plain socket's reads are taken in place (see {@link DirectReads}). */
  readonly direct?: DirectReads
}

/**
 * A plain (`http:`, `unix:`) socket whose reads are taken in place, without a `data` event or a
 * buffer allocated per read: each read lands where `target()` says or, when it says nothing, in
 * the connection's {@link ReadRing}, and is handed to `onData`. With `placed`, the bytes are at
 * the start of the last `target()` view; otherwise they are in the ring, and `onData` must be
 * done with them before RING_BYTES - MAX_READ_BYTES more bytes have been read, or copy them.
 */
export type DirectReads = {
  target: (() => Uint8Array | undefined) | undefined
  onData: ((view: Buffer, placed: boolean) => void) | undefined
  /** Bytes read after the response head, before `onData` was set (a copy). */
  pending: Buffer | undefined
}

/** The status line and headers of a response (header names lower-cased). */
export type ResponseHead = {
  readonly status: number
  readonly reason: string
  readonly headers: ReadonlyMap<string, string>
}

/**
 * What the client's `agentFor(url)` returns: for `https:`, its `createConnection` applies the
 * client's TLS policy (CA, fingerprint pin) to every new connection, whatever the host.
 */
export type AgentLike = {
  readonly options?: object
  createConnection?: unknown
}

const MAX_HEAD_BYTES = 64 * 1024
const TLS_CODES = /^(ERR_SSL_|ERR_TLS_|EPROTO$|CERT_|UNABLE_TO_|DEPTH_ZERO|SELF_SIGNED)/

/** Opens a TCP (or unix socket) connection to `target`, with TLS through the agent for `https:`. */
export async function openConnection(
  target: Target,
  agent: AgentLike | undefined,
  signal: AbortSignal,
  options: { directReads?: boolean } = {}
): Promise<Connection> {
  signal.throwIfAborted()
  const { base } = target
  // TLS sockets cannot read in place: the TLS layer needs the bytes of the socket underneath.
  const direct: DirectReads | undefined =
    options.directReads && base.protocol !== 'https:'
      ? { target: undefined, onData: undefined, pending: undefined }
      : undefined
  const ring = direct ? new ReadRing() : undefined
  // Node calls `buffer()` after each read for the next one: `placed` describes the read at hand.
  let placed = false
  const onread = ring
    ? {
        buffer: () => {
          const target = direct!.target?.()
          placed = target !== undefined
          return target ?? ring.next()
        },
        callback: (n: number, buffer: Uint8Array) => {
          if (!placed) ring.advance(n)
          direct!.onData?.(Buffer.from(buffer.buffer, buffer.byteOffset, n), placed)
        },
      }
    : undefined
  const raw =
    base.protocol === 'unix:'
      ? net.connect({ path: base.pathname, onread } as net.NetConnectOpts)
      : net.connect({
          host: socketHost(base),
          port: socketPort(base),
          noDelay: true,
          onread,
        } as net.NetConnectOpts)
  const conn: Connection = { target, stream: raw, raw, error: undefined, direct }
  raw.on('error', (error) => (conn.error ??= error))
  try {
    await settle(conn, raw, 'connect', signal)
    if (base.protocol !== 'https:') return conn
    const stream = connectTls(raw, base, agent)
    const secured: Connection = { ...conn, stream }
    stream.on('error', (error) => (secured.error ??= error))
    await settle(secured, stream, 'secureConnect', signal)
    return secured
  } catch (error) {
    raw.destroy()
    throw error
  }
}

function connectTls(raw: net.Socket, base: URL, agent: AgentLike | undefined): tls.TLSSocket {
  const create = agent?.createConnection
  if (typeof create !== 'function') {
    throw new XapiClientError('XAPI_CLIENT_TLS', `no TLS agent for ${base.origin}`)
  }
  const host = socketHost(base)
  const options: tls.ConnectionOptions = {
    ...(agent?.options as tls.ConnectionOptions | undefined),
    socket: raw,
    host,
    port: socketPort(base),
    servername: net.isIP(host) === 0 ? host : undefined,
  }
  return (create as (o: tls.ConnectionOptions) => tls.TLSSocket).call(agent, options)
}

function settle(
  conn: Connection,
  socket: net.Socket,
  event: 'connect' | 'secureConnect',
  signal: AbortSignal
): Promise<void> {
  return new Promise((resolve, reject) => {
    const cleanup = () => {
      socket.off(event, onReady)
      socket.off('error', onError)
      socket.off('close', onClose)
      signal.removeEventListener('abort', onAbort)
    }
    const onReady = () => {
      // The agent verifies the certificate in its own `secureConnect` listener and destroys the
      // socket with an XapiTlsError: wait for that error rather than resolving.
      if (socket.destroyed) return
      cleanup()
      resolve()
    }
    const onError = (cause: Error) => {
      cleanup()
      reject(wrapSocketError(cause, conn.target, 'cannot connect to'))
    }
    const onClose = () => {
      cleanup()
      const cause = conn.error
      if (cause) reject(wrapSocketError(cause, conn.target, 'cannot connect to'))
      else reject(new XapiTransportError(`${describeTarget(conn.target)} closed the connection`))
    }
    const onAbort = () => {
      cleanup()
      reject(signal.reason)
    }
    socket.once(event, onReady)
    socket.once('error', onError)
    socket.once('close', onClose)
    signal.addEventListener('abort', onAbort, { once: true })
  })
}

/** Wraps a socket error in an `XapiTransportError` naming the host (never the query). */
export function wrapSocketError(cause: Error, target: Target, doing = 'connection to'): Error {
  if (cause instanceof XapiClientError) return cause
  const code = (cause as NodeJS.ErrnoException).code
  const where = describeTarget(target)
  if (code !== undefined && TLS_CODES.test(code)) {
    return new XapiTransportError(`TLS with ${where} failed (${code}): ${cause.message}`, { cause })
  }
  return new XapiTransportError(`${doing} ${where}: ${cause.message}`, { cause })
}

/**
 * Writes the request head. `HTTP/1.0` as xe sends it: the body is delimited by
 * `Content-Length` or by the end of the connection, never chunked.
 */
export function writeRequestHead(
  conn: Connection,
  method: 'GET' | 'PUT',
  headers: Record<string, string> = {}
): void {
  const { base, path } = conn.target
  const host = base.protocol === 'unix:' ? 'localhost' : base.host
  const lines = [`${method} ${path} HTTP/1.0`, `Host: ${host}`, 'User-Agent: xapi-ops']
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`)
  conn.stream.write(`${lines.join('\r\n')}\r\n\r\n`, 'latin1')
}

/**
 * Reads the response head, skipping `1xx` interim responses; bytes after it are pushed back onto
 * the stream, which is left paused.
 */
export async function readResponseHead(
  conn: Connection,
  signal: AbortSignal
): Promise<ResponseHead> {
  for (;;) {
    const head = await readOneHead(conn, signal)
    if (head.status >= 200) return head
  }
}

function readOneHead(conn: Connection, signal: AbortSignal): Promise<ResponseHead> {
  const { stream, target, direct } = conn
  return new Promise((resolve, reject) => {
    let buffered: Buffer = Buffer.alloc(0)
    const cleanup = () => {
      if (direct) direct.onData = undefined
      stream.off('data', onData)
      stream.off('end', onEnd)
      stream.off('error', onError)
      signal.removeEventListener('abort', onAbort)
      stream.pause()
    }
    const fail = (error: unknown) => {
      cleanup()
      reject(error)
    }
    const onData = (chunk: Buffer) => {
      // A direct read's view is reused: keep a copy (the head is small).
      if (direct && buffered.length === 0) chunk = Buffer.from(chunk)
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk])
      const text = buffered.toString('latin1', 0, Math.min(buffered.length, MAX_HEAD_BYTES))
      const match = /\r?\n\r?\n/.exec(text)
      if (!match) {
        if (buffered.length >= MAX_HEAD_BYTES) {
          fail(new XapiTransportError(`response head from ${describeTarget(target)} is too large`))
        }
        return
      }
      cleanup()
      const rest = buffered.subarray(match.index + match[0].length)
      if (rest.length > 0 && direct) direct.pending = rest
      else if (rest.length > 0) stream.unshift(rest)
      try {
        resolve(parseHead(text.slice(0, match.index), target))
      } catch (error) {
        reject(error)
      }
    }
    const onEnd = () =>
      fail(
        new XapiTransportError(`${describeTarget(target)} closed the connection before answering`)
      )
    const onError = (cause: Error) => fail(wrapSocketError(cause, target))
    const onAbort = () => fail(signal.reason)
    if (signal.aborted) return onAbort()
    if (conn.error) return onError(conn.error)
    if (direct) direct.onData = onData
    else stream.on('data', onData)
    stream.once('end', onEnd)
    stream.once('error', onError)
    signal.addEventListener('abort', onAbort, { once: true })
    // After an interim (1xx) response, what followed it comes first.
    const pending = direct?.pending
    if (direct && pending) {
      direct.pending = undefined
      onData(pending)
      if (direct.onData !== onData) return
    }
    stream.resume()
  })
}

/** Parses a status line and header lines (xapi writes `task-id:OpaqueRef:…` without a space). */
export function parseHead(text: string, target: Target): ResponseHead {
  const [statusLine = '', ...lines] = text.split(/\r?\n/)
  const status = /^HTTP\/\d(?:\.\d)?\s+(\d{3})(?:\s+(.*))?$/.exec(statusLine)
  if (!status) {
    throw new XapiTransportError(`malformed HTTP status line from ${describeTarget(target)}`)
  }
  const headers = new Map<string, string>()
  for (const line of lines) {
    const colon = line.indexOf(':')
    if (colon <= 0) continue
    const name = line.slice(0, colon).trim().toLowerCase()
    const value = line.slice(colon + 1).trim()
    const previous = headers.get(name)
    headers.set(name, previous === undefined ? value : `${previous}, ${value}`)
  }
  return { status: Number(status[1]), reason: status[2]?.trim() ?? '', headers }
}

/** Closes the connection at once; `reset` sends a TCP RST so the peer sees an abort, not an EOF. */
export function destroyConnection(conn: Connection, reset = false): void {
  if (reset && !conn.raw.destroyed && conn.target.base.protocol !== 'unix:') {
    try {
      conn.raw.resetAndDestroy()
    } catch {
      // not connected yet: a plain destroy is all there is
    }
  }
  conn.stream.destroy()
  conn.raw.destroy()
}
