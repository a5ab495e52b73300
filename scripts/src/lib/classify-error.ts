import { describeError, errorCode, isCliError } from './errors.js'
import { EXIT_CODES, type ExitCode } from './exit-codes.js'

/** How `runCommand` reports an error that escaped a command. */
export type ErrorClassification = {
  readonly exitCode: ExitCode
  /** One line, no stack, no secrets. */
  readonly message: string
  /** A bug rather than an expected failure: the stack is worth printing. */
  readonly unexpected: boolean
}

// Node/TLS failures to reach or trust a server: connection errors (exit 2).
const NETWORK_CODE = /^(E[A-Z0-9_]+|ERR_TLS_.*|ERR_SSL_.*|.*CERT.*|UND_ERR_.*)$/

/**
 * The single error → exit-code map of every script. An error escaping `run` happened before
 * anything changed (see `ScriptCommand`), so XAPI, client, network and usage errors are exit 2;
 * an abort after SIGINT/SIGTERM is 130; anything else is a bug (exit 1, stack printed).
 */
export function classifyError(error: unknown, signal: AbortSignal): ErrorClassification {
  if (signal.aborted) {
    return {
      exitCode: EXIT_CODES.INTERRUPTED,
      message: describeError(signal.reason),
      unexpected: false,
    }
  }
  if (isCliError(error)) {
    return { exitCode: error.exitCode, message: error.message, unexpected: false }
  }
  const name = error instanceof Error ? error.name : ''
  const code = errorCode(error)
  const params = (error as { params?: unknown } | null)?.params
  if (code !== undefined && Array.isArray(params)) {
    if (code === 'SESSION_AUTHENTICATION_FAILED') {
      return usage(
        `authentication failed for user ${String(params[0] ?? '?')}: ${String(params[1] ?? '')}`
      )
    }
    return usage(`XAPI error: ${describeError(error)}`)
  }
  if (code !== undefined && (code.startsWith('XAPI_CLIENT_') || NETWORK_CODE.test(code))) {
    return usage(withCause(error))
  }
  if (name === 'InvalidOptionError') return usage(withCause(error))
  return {
    exitCode: EXIT_CODES.ITEM_FAILED,
    message: `unexpected error: ${describeError(error)}`,
    unexpected: true,
  }
}

/** An error thrown while parsing the command line (unknown option, failed check): exit 2. */
export function classifyUsageError(error: unknown): ErrorClassification {
  if (isCliError(error))
    return { exitCode: error.exitCode, message: error.message, unexpected: false }
  return usage(`${describeError(error)} (see --help)`)
}

function usage(message: string): ErrorClassification {
  return { exitCode: EXIT_CODES.USAGE, message, unexpected: false }
}

function withCause(error: unknown): string {
  const message = describeError(error)
  const cause = error instanceof Error ? error.cause : undefined
  if (cause === undefined) return message
  const causeMessage = describeError(cause)
  return message.includes(causeMessage) ? message : `${message}: ${causeMessage}`
}
