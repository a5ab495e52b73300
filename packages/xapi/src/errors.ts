import { XapiError, isXapiError } from '@xapi-ops/xapi-formats'
import type { CallContext, XapiErrorExtra } from '@xapi-ops/xapi-formats'

// The server's errors (XapiError) are shared with the simulator; the client's own are here.
export { XapiError, isXapiError }
export type { CallContext, XapiErrorExtra }

const CLIENT_ERROR = Symbol.for('xapi-ops.XapiClientError')

/** Stable codes of the errors raised by the client itself. */
export const XAPI_CLIENT_ERROR_CODES = {
  TRANSPORT: 'XAPI_CLIENT_TRANSPORT',
  PROTOCOL: 'XAPI_CLIENT_PROTOCOL',
  TIMEOUT: 'XAPI_CLIENT_TIMEOUT',
  TLS: 'XAPI_CLIENT_TLS',
  TLS_PIN_MISMATCH: 'XAPI_CLIENT_TLS_PIN_MISMATCH',
  INVALID_OPTION: 'XAPI_CLIENT_INVALID_OPTION',
  READ_ONLY: 'XAPI_CLIENT_READ_ONLY',
  INVALID_CALL: 'XAPI_CLIENT_INVALID_CALL',
  CLOSED: 'XAPI_CLIENT_CLOSED',
  TOO_MANY_REDIRECTS: 'XAPI_CLIENT_TOO_MANY_REDIRECTS',
  COMPRESSION_MISMATCH: 'XAPI_CLIENT_COMPRESSION_MISMATCH',
} as const

export type XapiClientErrorCode = `XAPI_CLIENT_${string}`

/** A failure on the client side (network, protocol, TLS, options...). Match on `code`. */
export class XapiClientError extends Error {
  override name = 'XapiClientError'
  readonly code: XapiClientErrorCode
  /** Redacted call context, when the error happened during a call. */
  declare call?: CallContext

  constructor(code: XapiClientErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
  }

  // Brand check so errors from another copy of this package still match; subclasses use the
  // ordinary prototype check.
  static override [Symbol.hasInstance](value: unknown): boolean {
    if (this !== XapiClientError) return Function.prototype[Symbol.hasInstance].call(this, value)
    return typeof value === 'object' && value !== null && CLIENT_ERROR in value
  }
}
Object.defineProperty(XapiClientError.prototype, CLIENT_ERROR, { value: true })

/** The HTTP exchange failed: socket error, unexpected status or content type. */
export class XapiTransportError extends XapiClientError {
  override name = 'XapiTransportError'
  /** HTTP status, when a response was received. */
  declare readonly status?: number
  constructor(
    message: string,
    options?: { cause?: unknown; status?: number; code?: XapiClientErrorCode }
  ) {
    super(options?.code ?? XAPI_CLIENT_ERROR_CODES.TRANSPORT, message, options)
    if (options?.status !== undefined) this.status = options.status
  }
}

/** The server answered something that is not a valid XML-RPC / JSON-RPC response. */
export class XapiProtocolError extends XapiClientError {
  override name = 'XapiProtocolError'
  constructor(message: string, options?: { cause?: unknown }) {
    super(XAPI_CLIENT_ERROR_CODES.PROTOCOL, message, options)
  }
}

/** A call did not complete within its timeout. */
export class XapiTimeoutError extends XapiClientError {
  override name = 'XapiTimeoutError'
  readonly timeoutMs: number
  constructor(message: string, timeoutMs: number, options?: { cause?: unknown }) {
    super(XAPI_CLIENT_ERROR_CODES.TIMEOUT, message, options)
    this.timeoutMs = timeoutMs
  }
}

/** The server certificate was refused (untrusted, wrong host name, or fingerprint mismatch). */
export class XapiTlsError extends XapiClientError {
  override name = 'XapiTlsError'
  /** SHA-256 fingerprint of the certificate the server presented, when known. */
  declare readonly fingerprint?: string
  constructor(
    message: string,
    options?: { cause?: unknown; fingerprint?: string; pinMismatch?: boolean }
  ) {
    super(
      options?.pinMismatch ? XAPI_CLIENT_ERROR_CODES.TLS_PIN_MISMATCH : XAPI_CLIENT_ERROR_CODES.TLS,
      message,
      options
    )
    if (options?.fingerprint !== undefined) this.fingerprint = options.fingerprint
  }
}

/** A client option is invalid (thrown eagerly by `createClient` / `connect`). */
export class InvalidOptionError extends XapiClientError {
  override name = 'InvalidOptionError'
  readonly option: string
  constructor(option: string, message: string) {
    super(XAPI_CLIENT_ERROR_CODES.INVALID_OPTION, message)
    this.option = option
  }
}

/** Whether `e` is a client-side error (optionally with this `code`). */
export function isXapiClientError(e: unknown, code?: string): e is XapiClientError {
  return e instanceof XapiClientError && (code === undefined || e.code === code)
}
