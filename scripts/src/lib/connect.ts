import { connect, type XapiClient } from '@xapi-ops/xapi'
import { connectionOptionNames, type ConnectionSettings } from './connection-options.js'
import { classifyError } from './classify-error.js'
import { CliError, errorCode, isCliError } from './errors.js'
import { EXIT_CODES } from './exit-codes.js'

/** Options of {@link connectXapi}. */
export type ConnectXapiOptions = {
  /** `--dry-run`: the client refuses every call but getters. */
  readonly readOnly: boolean
  readonly signal?: AbortSignal
  /** The options' prefix (`from`, `to`), so that hints name the right options. */
  readonly prefix?: string
}

/**
 * Logs in to the pool described by `settings` (see `resolveConnection`); the client follows
 * `HOST_IS_SLAVE` to the master. Rejects with the client's `XapiError`/`XapiClientError`
 * (exit 2 through `runCommand`). Close it with {@link closeXapi}.
 */
export async function connectXapi(
  settings: ConnectionSettings,
  options: ConnectXapiOptions
): Promise<XapiClient> {
  try {
    return await login(settings, options)
  } catch (error) {
    // The client's TLS hints name its own options; name the command line's instead.
    if (error instanceof Error && errorCode(error)?.startsWith('XAPI_CLIENT_TLS')) {
      const n = connectionOptionNames(options.prefix)
      const message = error.message
        .replace('`fingerprint`', `--${n.fingerprint}`)
        .replace('`ca`', `--${n.ca}`)
        .replace('`allowUnauthorized: true`', `--${n.insecure}`)
      throw new CliError(`${side(options.prefix)}${message}`, {
        exitCode: EXIT_CODES.USAGE,
        cause: error,
      })
    }
    if (options.prefix !== undefined && !options.signal?.aborted && !isCliError(error)) {
      // Two pools: say which one failed (a wrong password, an unreachable host…).
      const { exitCode, message, unexpected } = classifyError(
        error,
        options.signal ?? new AbortController().signal
      )
      if (!unexpected) {
        throw new CliError(`${side(options.prefix)}${message}`, { exitCode, cause: error })
      }
    }
    throw error
  }
}

/** `source pool: ` for prefix `from`, `destination pool: ` for `to`. */
function side(prefix: string | undefined): string {
  if (prefix === 'from') return 'source pool: '
  if (prefix === 'to') return 'destination pool: '
  return ''
}

function login(settings: ConnectionSettings, options: ConnectXapiOptions): Promise<XapiClient> {
  return connect({
    url: settings.url,
    user: settings.user,
    password: settings.password,
    ...(settings.ca !== undefined && { ca: settings.ca }),
    ...(settings.fingerprint !== undefined && { fingerprint: settings.fingerprint }),
    allowUnauthorized: settings.insecure,
    readOnly: options.readOnly,
    ...(options.signal && { signal: options.signal }),
  })
}

/**
 * Logs out and closes the client, waiting at most `timeoutMs` (a lost connection must not keep
 * a shutdown hook waiting). Never throws.
 */
export async function closeXapi(xapi: XapiClient, timeoutMs = 10_000): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, timeoutMs)
    timer.unref()
  })
  try {
    await Promise.race([xapi.close().catch(() => {}), timeout])
  } finally {
    clearTimeout(timer)
  }
}
