/**
 * An API failure, answered as `{Status: 'Failure', ErrorDescription: [code, ...params]}` (or as a
 * failed task's `error_info`). Everything the simulator refuses goes through this class.
 */
export class XapiFailure extends Error {
  override name = 'XapiFailure'
  readonly code: string
  readonly params: readonly string[]
  constructor(code: string, params: readonly unknown[] = []) {
    const ps = params.map((p) => String(p))
    super(`${code}(${ps.join(', ')})`)
    this.code = code
    this.params = ps
  }
  /** `[code, ...params]`, the wire `ErrorDescription`. */
  get description(): string[] {
    return [this.code, ...this.params]
  }
}

/** Throws `code(params)`. */
export function fail(code: string, ...params: unknown[]): never {
  throw new XapiFailure(code, params)
}

/** Converts anything thrown by a handler to an ErrorDescription (unknown errors → INTERNAL_ERROR). */
export function toErrorDescription(e: unknown): string[] {
  if (e instanceof XapiFailure) return e.description
  return ['INTERNAL_ERROR', e instanceof Error ? e.message : String(e)]
}
