import { EXIT_CODES, type ExitCode } from './exit-codes.js'

/**
 * An expected failure of a script, printed as one line (no stack) and mapped to its exit code
 * by `runCommand`. Throw it only before anything has changed, or with an explicit `exitCode`.
 */
export class CliError extends Error {
  override name = 'CliError'
  readonly exitCode: ExitCode

  constructor(message: string, options: { exitCode: ExitCode; cause?: unknown }) {
    super(message, { cause: options.cause })
    this.exitCode = options.exitCode
  }
}

/**
 * Bad command line, configuration, or a selection that cannot be satisfied: exit 2, nothing changed.
 *
 * @example
 * throw new UsageError('--host is required: the pool has 3 hosts')
 */
export class UsageError extends CliError {
  override name = 'UsageError'

  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, { exitCode: EXIT_CODES.USAGE, cause: options.cause })
  }
}

/** Whether `error` is a {@link CliError} (also across module copies). */
export function isCliError(error: unknown): error is CliError {
  return (
    error instanceof Error &&
    typeof (error as { exitCode?: unknown }).exitCode === 'number' &&
    (error.name === 'CliError' || error.name === 'UsageError')
  )
}

/**
 * A one-line description of any error, for reports and messages: `CODE(params)` for XAPI
 * errors, the message otherwise. Never includes a stack.
 */
export function describeError(error: unknown): string {
  if (error instanceof Error) {
    const { code, params } = error as { code?: unknown; params?: unknown }
    if (typeof code === 'string' && Array.isArray(params)) {
      // XapiError: its message already is `CODE(params)`, but do not rely on subclasses keeping it.
      return error.message.startsWith(code) ? error.message : `${code}(${params.join(', ')})`
    }
    return error.message || error.name
  }
  return String(error)
}

/** The stable code of an error (`XapiError.code`, `XAPI_CLIENT_*`, `ECONNREFUSED`…), if it has one. */
export function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null | undefined)?.code
  return typeof code === 'string' ? code : undefined
}
