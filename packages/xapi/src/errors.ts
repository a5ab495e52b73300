import { XAPI_ERROR_PARAMS, isKnownXapiErrorCode } from './error-codes.js'
import type { Ref } from './refs.js'

/** Redacted context of a failed call, attached to errors as `error.call`. */
export type CallContext = {
  readonly method: string
  /** Parameters with the session ref and passwords replaced by `***`. */
  readonly params: readonly unknown[]
  /** Base URL of the host the call went to (never with credentials). */
  readonly host: string
  readonly durationMs: number
}

const XAPI_ERROR = Symbol.for('xapi-ops.XapiError')
const CLIENT_ERROR = Symbol.for('xapi-ops.XapiClientError')

/**
 * An error reported by the XAPI server: its `ErrorDescription` verbatim (`[code, ...params]`).
 * Branch on `code` (e.g. `VM_BAD_POWER_STATE`); `params` are named in `XAPI_ERROR_PARAMS`.
 */
export class XapiError extends Error {
  override name = 'XapiError'
  readonly code: string
  readonly params: string[]
  /** The XAPI method whose call failed, when known. */
  declare method?: string
  /** The task that failed, for errors coming from `callAsync` / `watchTask`. */
  declare task?: Ref<'task'>
  /** Redacted call context. */
  declare call?: CallContext
  /**
   * With `HOST_IS_SLAVE`: the master's certificate thumbprint, when the server sent it
   * (`x-xenapi-response-host-certificate-thumbprint`).
   */
  declare masterFingerprint?: string

  constructor(code: string, params: readonly string[], extra: XapiErrorExtra = {}) {
    super(`${code}(${params.join(', ')})${extra.hint ? `: ${extra.hint}` : ''}`)
    this.code = code
    this.params = [...params]
    if (extra.method !== undefined) this.method = extra.method
    if (extra.task !== undefined) this.task = extra.task
    if (extra.call !== undefined) this.call = extra.call
    if (extra.masterFingerprint !== undefined) this.masterFingerprint = extra.masterFingerprint
  }

  /** Builds an `XapiError` from an XAPI `ErrorDescription` (`[code, param1, ...]`). */
  static fromErrorDescription(desc: unknown, extra: XapiErrorExtra = {}): XapiError {
    if (!Array.isArray(desc) || desc.length === 0) {
      return new XapiError('UNKNOWN_ERROR', [safeString(desc)], extra)
    }
    const [code, ...params] = desc
    return new XapiError(safeString(code), params.map(safeString), extra)
  }

  /** The params keyed by the names in `XAPI_ERROR_PARAMS` (unknown codes: `param0`, ...). */
  get namedParams(): Record<string, string> {
    const names: readonly string[] = isKnownXapiErrorCode(this.code)
      ? XAPI_ERROR_PARAMS[this.code]
      : []
    const out: Record<string, string> = {}
    this.params.forEach((p, i) => (out[names[i] ?? `param${i}`] = p))
    return out
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    if (this !== XapiError) return Function.prototype[Symbol.hasInstance].call(this, value)
    return typeof value === 'object' && value !== null && XAPI_ERROR in value
  }
}
Object.defineProperty(XapiError.prototype, XAPI_ERROR, { value: true })

export type XapiErrorExtra = {
  method?: string
  task?: Ref<'task'>
  call?: CallContext
  masterFingerprint?: string
  /** Appended to the message (e.g. what to do about a failed login). */
  hint?: string
}

function safeString(v: unknown): string {
  if (typeof v === 'string') return v
  try {
    return typeof v === 'object' ? JSON.stringify(v) : String(v)
  } catch {
    return String(v)
  }
}

/** Whether `e` is an error reported by the XAPI server (optionally with this `code`). */
export function isXapiError(e: unknown, code?: string): e is XapiError {
  return e instanceof XapiError && (code === undefined || e.code === code)
}

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
