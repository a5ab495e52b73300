import {
  XapiClientError,
  XapiError,
  XapiTimeoutError,
  XapiTransportError,
  type CallContext,
} from './errors.js'
import { formatBaseUrl } from './options.js'
import type { RpcChannel } from './transport/rpc.js'

export const REDACTED = '***'

/** Whether `method` only reads: getters, `event.from` and `system.*` introspection. */
export function isReadOnlyMethod(method: string): boolean {
  return /^[^.]+\.get_/.test(method) || method === 'event.from' || method.startsWith('system.')
}

/** Replaces secrets (session refs) anywhere in `params`, and the login password. */
export function redactParams(
  method: string,
  params: readonly unknown[],
  secrets: ReadonlySet<string>
): unknown[] {
  const redact = (v: unknown): unknown => {
    if (typeof v === 'string') return secrets.has(v) ? REDACTED : v
    if (Array.isArray(v)) return v.map(redact)
    return v
  }
  const out = params.map(redact)
  if (/^session\.(slave_local_)?login/.test(method) && out.length > 1) out[1] = REDACTED
  return out
}

function isRetryable(method: string): boolean {
  return (
    isReadOnlyMethod(method) ||
    method === 'session.login_with_password' ||
    method === 'session.logout'
  )
}

function isDroppedConnection(error: unknown): boolean {
  if (!(error instanceof XapiTransportError) || error.status !== undefined) return false
  const code = (error.cause as NodeJS.ErrnoException | undefined)?.code
  return code === 'ECONNRESET' || code === 'EPIPE'
}

export type SendOptions = {
  readonly signal?: AbortSignal | undefined
  readonly timeoutMs: number
  /** Session refs to hide in error params and call contexts. */
  readonly secrets: ReadonlySet<string>
}

/**
 * Sends one call to `base` with a deadline. Errors get the method and a redacted call context;
 * a caller abort rejects with `signal.reason`, the deadline with `XapiTimeoutError`.
 */
export async function sendCall(
  channel: RpcChannel,
  base: URL,
  method: string,
  params: readonly unknown[],
  opts: SendOptions
): Promise<unknown> {
  const { signal, timeoutMs } = opts
  signal?.throwIfAborted()
  const started = performance.now()
  const ctrl = new AbortController()
  const timer = setTimeout(() => {
    ctrl.abort(
      new XapiTimeoutError(
        `${method} timed out after ${timeoutMs} ms on ${formatBaseUrl(base)}`,
        timeoutMs
      )
    )
  }, timeoutMs)
  const onAbort = () => ctrl.abort(signal!.reason)
  signal?.addEventListener('abort', onAbort, { once: true })
  try {
    try {
      return await channel.call(base, method, params, ctrl.signal)
    } catch (error) {
      // A keep-alive socket the server closed meanwhile: resend once, only if that is harmless.
      if (!isDroppedConnection(error) || ctrl.signal.aborted || !isRetryable(method)) throw error
      return await channel.call(base, method, params, ctrl.signal)
    }
  } catch (error) {
    if (signal?.aborted && error === signal.reason) throw error
    const call: CallContext = {
      method,
      params: redactParams(method, params, opts.secrets),
      host: formatBaseUrl(base),
      durationMs: Math.round(performance.now() - started),
    }
    if (error instanceof XapiError) {
      const params = error.params.map((p) => (opts.secrets.has(p) ? REDACTED : p))
      throw new XapiError(error.code, params, {
        method,
        call,
        ...(error.masterFingerprint !== undefined && {
          masterFingerprint: error.masterFingerprint,
        }),
      })
    }
    if (error instanceof XapiClientError) error.call ??= call
    throw error
  } finally {
    clearTimeout(timer)
    signal?.removeEventListener('abort', onAbort)
  }
}
