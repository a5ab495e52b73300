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
