import { readFile, stat } from 'node:fs/promises'
import type { Argv } from 'yargs'
import { UsageError } from './errors.js'
import { readPassword } from './password.js'

/** The dom0 XAPI socket, used when no URL is given and it exists (scripts run as host hooks). */
export const DOM0_SOCKET = '/var/lib/xcp/xapi'

/** Environment variable overriding {@link DOM0_SOCKET} (tests, unusual installs). */
export const DOM0_SOCKET_ENV = 'XAPI_OPS_DOM0_SOCKET'

/**
 * Names of one set of connection options. The unprefixed set is `--url`, `--user`,
 * `--password-file`, `--ca`, `--fingerprint`, `--insecure` with `XAPI_URL`, `XAPI_USER`,
 * `XAPI_PASSWORD`; prefix `from` gives `--from-url`, … with `XAPI_FROM_URL`, ….
 */
export type ConnectionOptionNames = {
  readonly url: string
  readonly user: string
  readonly passwordFile: string
  readonly password: string
  readonly ca: string
  readonly fingerprint: string
  readonly insecure: string
  readonly envUrl: string
  readonly envUser: string
  readonly envPassword: string
}

/** The option and variable names for `prefix` (none: the plain `--url`/`XAPI_URL` set). */
export function connectionOptionNames(prefix?: string): ConnectionOptionNames {
  const opt = (name: string) => (prefix ? `${prefix}-${name}` : name)
  const env = (name: string) =>
    prefix ? `XAPI_${prefix.toUpperCase().replaceAll('-', '_')}_${name}` : `XAPI_${name}`
  return {
    url: opt('url'),
    user: opt('user'),
    passwordFile: opt('password-file'),
    password: opt('password'),
    ca: opt('ca'),
    fingerprint: opt('fingerprint'),
    insecure: opt('insecure'),
    envUrl: env('URL'),
    envUser: env('USER'),
    envPassword: env('PASSWORD'),
  }
}

/**
 * Adds one set of connection options to a yargs parser.
 *
 * @example
 * // vm-migrate: --from-url/XAPI_FROM_URL… and --to-url/XAPI_TO_URL…
 * addConnectionOptions(addConnectionOptions(y, { prefix: 'from', title: 'Source pool' }), { prefix: 'to', title: 'Destination pool' })
 */
export function addConnectionOptions<T>(
  argv: Argv<T>,
  options: {
    readonly prefix?: string
    readonly title?: string
    readonly localSocketDefault?: boolean
  } = {}
): Argv<T> {
  const n = connectionOptionNames(options.prefix)
  const group = `${options.title ?? 'Connection'}:`
  const localDefault =
    (options.localSocketDefault ?? options.prefix === undefined)
      ? `; default unix:${DOM0_SOCKET} when that socket exists`
      : ''
  return argv
    .option(n.url, {
      type: 'string',
      group,
      describe: `XAPI URL: https://host, http://host or unix:/path (env ${n.envUrl}${localDefault})`,
    })
    .option(n.user, {
      type: 'string',
      group,
      describe: `user name (env ${n.envUser}) [default: root]`,
    })
    .option(n.passwordFile, {
      type: 'string',
      group,
      describe: `file holding the password (else env ${n.envPassword}, else a prompt on a TTY)`,
    })
    .option(n.password, { type: 'string', hidden: true })
    .option(n.ca, { type: 'string', group, describe: 'PEM file of the CA to trust for https' })
    .option(n.fingerprint, {
      type: 'string',
      group,
      describe: "SHA-256 fingerprint of the server's certificate to pin (hex, colons optional)",
    })
    .option(n.insecure, {
      type: 'boolean',
      group,
      default: false,
      describe: 'do not verify the TLS certificate (test pools only)',
    }) as unknown as Argv<T>
}

/**
 * Adds `--ca` and `--insecure` for every pool of a script that talks to several (vm-migrate):
 * each side's own `--<prefix>-ca` / `--<prefix>-insecure` still wins for that side.
 */
export function addSharedTlsOptions<T>(argv: Argv<T>, title = 'Both pools'): Argv<T> {
  const group = `${title}:`
  return argv
    .option('ca', {
      type: 'string',
      group,
      describe: 'PEM file of the CA to trust for https, for every pool without its own CA',
    })
    .option('insecure', {
      type: 'boolean',
      default: false,
      group,
      describe: 'do not verify the TLS certificates of any pool (test pools only)',
    }) as unknown as Argv<T>
}

/** Resolved, validated connection settings; `password` must never be printed. */
export type ConnectionSettings = {
  readonly url: string
  readonly user: string
  readonly password: string
  /** PEM text read from `--ca`. */
  readonly ca?: string
  /** Lower-case hex without colons. */
  readonly fingerprint?: string
  readonly insecure: boolean
  /** The URL came from the dom0 socket default (no `--url`, no variable). */
  readonly localSocket: boolean
}

/** What {@link resolveConnection} reads besides the parsed arguments. */
export type ResolveConnectionContext = {
  readonly prefix?: string
  readonly env: Readonly<Record<string, string | undefined>>
  readonly stdin: NodeJS.ReadableStream & { isTTY?: boolean }
  readonly stderr: NodeJS.WritableStream
  /** Fall back to the dom0 socket when no URL is given. @default prefix === undefined */
  readonly localSocketDefault?: boolean
  /** With a prefix: also read the shared `--ca` / `--insecure` ({@link addSharedTlsOptions}). */
  readonly sharedTls?: boolean
  readonly signal?: AbortSignal
}

/**
 * Turns parsed arguments and the environment into {@link ConnectionSettings}: validates the URL,
 * rejects a password on the command line, reads `--ca` and the password (file, environment,
 * TTY prompt). Throws {@link UsageError} (exit 2) on any problem.
 */
export async function resolveConnection(
  argv: Readonly<Record<string, unknown>>,
  context: ResolveConnectionContext
): Promise<ConnectionSettings> {
  const n = connectionOptionNames(context.prefix)
  const { env } = context
  if (argv[n.password] !== undefined) {
    throw new UsageError(
      `--${n.password} is not accepted: a password in argv is visible to every user in the process ` +
        `list and in shell history; use ${n.envPassword}, --${n.passwordFile} or the prompt`
    )
  }
  let url = stringArg(argv, n.url) ?? nonEmpty(env[n.envUrl])
  let localSocket = false
  if (url === undefined) {
    const socket = env[DOM0_SOCKET_ENV] ?? DOM0_SOCKET
    if ((context.localSocketDefault ?? context.prefix === undefined) && (await exists(socket))) {
      url = `unix:${socket}`
      localSocket = true
    } else {
      throw new UsageError(`no XAPI URL: pass --${n.url} or set ${n.envUrl}`)
    }
  }
  validateUrl(url, `--${n.url}`)
  const user = stringArg(argv, n.user) ?? nonEmpty(env[n.envUser]) ?? 'root'
  const fingerprint = normalizeFingerprint(stringArg(argv, n.fingerprint), `--${n.fingerprint}`)
  // The side's own --<prefix>-ca wins over the shared --ca; either --insecure applies.
  const shared = context.sharedTls === true && context.prefix !== undefined
  const ownCa = stringArg(argv, n.ca)
  const caOption = ownCa !== undefined || !shared ? n.ca : 'ca'
  const caFile = ownCa ?? (shared ? stringArg(argv, 'ca') : undefined)
  const insecureOption =
    argv[n.insecure] === true
      ? n.insecure
      : shared && argv.insecure === true
        ? 'insecure'
        : undefined
  const insecure = insecureOption !== undefined
  if (insecureOption !== undefined && (fingerprint !== undefined || caFile !== undefined)) {
    const trust = fingerprint !== undefined ? n.fingerprint : caOption
    throw new UsageError(`--${insecureOption} contradicts --${trust}: choose one`)
  }
  let ca: string | undefined
  if (caFile !== undefined) {
    try {
      ca = await readFile(caFile, { encoding: 'utf8', signal: context.signal })
    } catch (error) {
      throw new UsageError(`cannot read --${caOption} ${caFile}: ${(error as Error).message}`, {
        cause: error,
      })
    }
  }
  const password = await readPassword({
    file: stringArg(argv, n.passwordFile),
    envValue: env[n.envPassword],
    envName: n.envPassword,
    stdin: context.stdin,
    stderr: context.stderr,
    prompt: `Password for ${user} at ${url}: `,
    // Local root logins over the dom0 socket are not checked against a password.
    allowEmpty: url.startsWith('unix:'),
    signal: context.signal,
  })
  return { url, user, password, ca, fingerprint, insecure, localSocket }
}

/** Throws a {@link UsageError} unless `url` is `https://…`, `http://…` or `unix:/path`, without credentials. */
export function validateUrl(url: string, option = '--url'): void {
  if (url.startsWith('unix:')) {
    if (url.length <= 'unix:'.length) throw new UsageError(`${option}: unix: needs a socket path`)
    return
  }
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw new UsageError(
      `${option}: not a URL: ${JSON.stringify(url)} (expected https://, http:// or unix:)`
    )
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
    throw new UsageError(
      `${option}: unsupported scheme ${parsed.protocol} (expected https://, http:// or unix:)`
    )
  }
  if (parsed.username !== '' || parsed.password !== '') {
    throw new UsageError(
      `${option}: credentials in the URL are not accepted (argv is visible to all users)`
    )
  }
}

/** `AB:cd:…` → `abcd…`; throws unless it is 64 hex digits (SHA-256). */
export function normalizeFingerprint(
  value: string | undefined,
  option = '--fingerprint'
): string | undefined {
  if (value === undefined) return undefined
  const hex = value
    .replace(/^sha-?256:/i, '')
    .replaceAll(':', '')
    .toLowerCase()
  if (!/^[0-9a-f]{64}$/.test(hex)) {
    throw new UsageError(
      `${option}: expected a SHA-256 fingerprint (64 hex digits, colons allowed)`
    )
  }
  return hex
}

function stringArg(argv: Readonly<Record<string, unknown>>, key: string): string | undefined {
  const value = argv[key]
  if (Array.isArray(value)) throw new UsageError(`--${key} given more than once`)
  return typeof value === 'string' ? nonEmpty(value) : undefined
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path)
    return true
  } catch {
    return false
  }
}
