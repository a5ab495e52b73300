import { XAPI_CLIENT_ERROR_CODES, XapiTransportError } from '../errors.js'
import {
  destroyConnection,
  openConnection,
  readResponseHead,
  writeRequestHead,
  type AgentLike,
  type Connection,
  type ResponseHead,
} from './http-connection.js'
import { describeTarget, resolveLocation, type Target } from './url.js'

/** Hops followed before giving up, as the C# SDK's `HTTP.cs` (`MAX_REDIRECTS = 10`). */
export const MAX_REDIRECTS = 10

const REDIRECTS = new Set([301, 302, 303, 307, 308])

/**
 * Sends the head of `method target` and reads the response head, following redirects to any
 * pool member (xapi answers 302 when another host sees the VM's or the SR's storage). For a PUT
 * the body is not sent yet: xapi answers 200/302/403 before reading it, and xe waits for that.
 */
export async function openRequest(
  agentFor: (base: URL) => AgentLike | undefined,
  method: 'GET' | 'PUT',
  target: Target,
  headers: Record<string, string>,
  signal: AbortSignal,
  options: {
    directReads?: boolean
    /**
     * Called once when a host's certificate does not match the pin (a pool member with its own
     * certificate): resolves true when the pins changed, and the host is dialled again.
     */
    onPinMismatch?: ((signal: AbortSignal) => Promise<boolean>) | undefined
  } = {}
): Promise<{ conn: Connection; head: ResponseHead }> {
  let current = target
  let relearnt = false
  for (let hop = 0; ; hop++) {
    const agent = current.base.protocol === 'unix:' ? undefined : agentFor(current.base)
    let conn: Connection
    try {
      conn = await openConnection(current, agent, signal, options)
    } catch (error) {
      const { onPinMismatch } = options
      if (relearnt || !onPinMismatch || !isPinMismatch(error)) throw error
      relearnt = true
      if (!(await onPinMismatch(signal).catch(() => false))) throw error
      conn = await openConnection(current, agent, signal, options)
    }
    let head: ResponseHead
    try {
      writeRequestHead(conn, method, headers)
      head = await readResponseHead(conn, signal)
    } catch (error) {
      destroyConnection(conn, true)
      throw error
    }
    if (!REDIRECTS.has(head.status)) return { conn, head }
    destroyConnection(conn)
    current = redirectTarget(current, head, hop)
  }
}

function isPinMismatch(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === XAPI_CLIENT_ERROR_CODES.TLS_PIN_MISMATCH
}

function redirectTarget(from: Target, head: ResponseHead, hop: number): Target {
  const location = head.headers.get('location')
  if (location === undefined || location === '') {
    throw new XapiTransportError(
      `HTTP ${head.status} without Location from ${describeTarget(from)}`,
      { status: head.status }
    )
  }
  if (hop + 1 > MAX_REDIRECTS) {
    throw new XapiTransportError(
      `more than ${MAX_REDIRECTS} redirects, the last from ${describeTarget(from)}`,
      { code: XAPI_CLIENT_ERROR_CODES.TOO_MANY_REDIRECTS, status: head.status }
    )
  }
  try {
    return resolveLocation(from, location)
  } catch (cause) {
    throw new XapiTransportError(
      `invalid redirect from ${describeTarget(from)}: ${(cause as Error).message}`,
      { cause, status: head.status }
    )
  }
}
