import { InvalidOptionError } from './errors.js'

/** How to reach and authenticate to a pool. */
export type ClientOptions = {
  /**
   * The pool master (or any member: the client follows `HOST_IS_SLAVE`):
   * `https://host[:port]`, `http://host[:port]` or `unix:/var/lib/xcp/xapi` (dom0 local socket).
   */
  readonly url: string
  readonly user: string
  readonly password: string
  /**
   * `auto` tries JSON-RPC at `/jsonrpc` and falls back to XML-RPC when the server answers it
   * with an error status or a non-JSON content type.
   * @default 'auto'
   */
  readonly transport?: 'auto' | 'json-rpc' | 'xml-rpc'
  /** Extra CA certificate(s) (PEM) trusted for the pool's TLS certificates. */
  readonly ca?: string | Buffer
  /**
   * SHA-256 fingerprint of the server certificate (hex, colons optional). When set, only a
   * certificate with this fingerprint is accepted, on every connection to every pool member.
   */
  readonly fingerprint?: string
  /**
   * Accept any TLS certificate. Unsafe: prefer `fingerprint` or `ca`.
   * @default false
   */
  readonly allowUnauthorized?: boolean
  /**
   * Timeout of one call (`event.from` gets its own long-poll timeout plus a margin).
   * @default 60_000
   */
  readonly callTimeoutMs?: number
  /**
   * Maximum number of calls in flight (`event.from` long polls are not counted).
   * @default 20
   */
  readonly callConcurrency?: number
  /**
   * Refuse every call except getters (`*.get_*`), `event.from` and `system.*`.
   * @default false
   */
  readonly readOnly?: boolean
  /**
   * Sent as `originator` to `session.login_with_password`.
   * @default 'xapi-ops'
   */
  readonly originator?: string
}

/** Options with defaults applied and values normalised. */
export type ResolvedClientOptions = {
  readonly url: string
  readonly user: string
  readonly transport: 'auto' | 'json-rpc' | 'xml-rpc'
  readonly ca: string | Buffer | undefined
  /** Upper-case hex, colon-separated (`AB:CD:…`), or undefined. */
  readonly fingerprint: string | undefined
  readonly allowUnauthorized: boolean
  readonly callTimeoutMs: number
  readonly callConcurrency: number
  readonly readOnly: boolean
  readonly originator: string
}

export const DEFAULT_CALL_TIMEOUT_MS = 60_000
export const DEFAULT_CALL_CONCURRENCY = 20
export const DEFAULT_ORIGINATOR = 'xapi-ops'

const TRANSPORTS = ['auto', 'json-rpc', 'xml-rpc'] as const

function describe(v: unknown): string {
  if (typeof v === 'string') return `\`${v}\` (string)`
  if (v === null) return 'null'
  if (typeof v === 'object') return Array.isArray(v) ? 'an array' : 'an object'
  return `\`${String(v)}\` (${typeof v})`
}

/** Validates `options` eagerly and applies defaults. Throws `InvalidOptionError`. */
export function resolveOptions(options: ClientOptions): {
  resolved: ResolvedClientOptions
  password: string
  baseUrl: URL
} {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidOptionError(
      'options',
      `Expected options to be an object, got ${describe(options)}`
    )
  }
  const baseUrl = parseXapiUrl(options.url)
  if (typeof options.user !== 'string' || options.user === '') {
    throw new InvalidOptionError(
      'user',
      `Expected \`user\` to be a non-empty string, got ${describe(options.user)}`
    )
  }
  if (typeof options.password !== 'string') {
    // Never echo the value: it might be a secret of the wrong type.
    throw new InvalidOptionError(
      'password',
      `Expected \`password\` to be a string, got ${typeof options.password}`
    )
  }
  const transport = options.transport ?? 'auto'
  if (!TRANSPORTS.includes(transport)) {
    throw new InvalidOptionError(
      'transport',
      `Expected \`transport\` to be one of ${TRANSPORTS.join(', ')}, got ${describe(transport)}`
    )
  }
  if (options.ca !== undefined && typeof options.ca !== 'string' && !Buffer.isBuffer(options.ca)) {
    throw new InvalidOptionError(
      'ca',
      `Expected \`ca\` to be a PEM string or Buffer, got ${describe(options.ca)}`
    )
  }
  const fingerprint =
    options.fingerprint === undefined ? undefined : normalizeFingerprint(options.fingerprint)
  const allowUnauthorized = options.allowUnauthorized ?? false
  if (typeof allowUnauthorized !== 'boolean') {
    throw new InvalidOptionError(
      'allowUnauthorized',
      `Expected \`allowUnauthorized\` to be a boolean, got ${describe(allowUnauthorized)}`
    )
  }
  const callTimeoutMs = options.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS
  if (typeof callTimeoutMs !== 'number' || !Number.isFinite(callTimeoutMs) || callTimeoutMs <= 0) {
    throw new InvalidOptionError(
      'callTimeoutMs',
      `Expected \`callTimeoutMs\` to be a positive finite number, got ${describe(callTimeoutMs)}`
    )
  }
  const callConcurrency = options.callConcurrency ?? DEFAULT_CALL_CONCURRENCY
  if (!Number.isInteger(callConcurrency) || callConcurrency < 1) {
    throw new InvalidOptionError(
      'callConcurrency',
      `Expected \`callConcurrency\` to be a positive integer, got ${describe(callConcurrency)}`
    )
  }
  const readOnly = options.readOnly ?? false
  if (typeof readOnly !== 'boolean') {
    throw new InvalidOptionError(
      'readOnly',
      `Expected \`readOnly\` to be a boolean, got ${describe(readOnly)}`
    )
  }
  const originator = options.originator ?? DEFAULT_ORIGINATOR
  if (typeof originator !== 'string') {
    throw new InvalidOptionError(
      'originator',
      `Expected \`originator\` to be a string, got ${describe(originator)}`
    )
  }
  return {
    resolved: {
      url: formatBaseUrl(baseUrl),
      user: options.user,
      transport,
      ca: options.ca,
      fingerprint,
      allowUnauthorized,
      callTimeoutMs,
      callConcurrency,
      readOnly,
      originator,
    },
    password: options.password,
    baseUrl,
  }
}

/**
 * Parses the `url` option: `https://host[:port]`, `http://host[:port]` or `unix:/path/to/socket`.
 * Credentials in the URL are refused (and never echoed).
 */
export function parseXapiUrl(url: unknown): URL {
  if (typeof url !== 'string' || url.trim() === '') {
    throw new InvalidOptionError(
      'url',
      `Expected \`url\` to be a non-empty string, got ${describe(url)}`
    )
  }
  const text = url.trim()
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(text)?.[1]?.toLowerCase()
  // `host:443` parses as scheme "host": a scheme must be followed by `//` (or be unix:).
  if (scheme === undefined || (scheme !== 'unix' && !/^[a-z][a-z0-9+.-]*:\/\//i.test(text))) {
    throw new InvalidOptionError(
      'url',
      `The URL \`${redactUrlText(text)}\` has no scheme: write https://${redactUrlText(text)} (or http://, unix:/path)`
    )
  }
  if (scheme === 'unix') {
    const path = text.slice('unix:'.length).replace(/^\/\/(?=\/)/, '')
    if (!path.startsWith('/')) {
      throw new InvalidOptionError(
        'url',
        `Expected an absolute socket path after unix:, got \`${redactUrlText(text)}\``
      )
    }
    return new URL(`unix:${path}`)
  }
  if (scheme !== 'https' && scheme !== 'http') {
    throw new InvalidOptionError(
      'url',
      `Unsupported URL scheme \`${scheme}:\` in \`${redactUrlText(text)}\`: use https://, http:// or unix:/path`
    )
  }
  let parsed: URL
  try {
    parsed = new URL(text)
  } catch {
    throw new InvalidOptionError('url', `Invalid URL \`${redactUrlText(text)}\``)
  }
  if (parsed.username !== '' || parsed.password !== '') {
    throw new InvalidOptionError(
      'url',
      `The URL \`${formatBaseUrl(parsed)}\` contains credentials: pass them as \`user\` and \`password\``
    )
  }
  if (parsed.hostname === '') {
    throw new InvalidOptionError('url', `The URL \`${redactUrlText(text)}\` has no host`)
  }
  parsed.search = ''
  parsed.hash = ''
  return parsed
}

/** Removes `user:password@` from URL-like text before it is shown. */
function redactUrlText(text: string): string {
  return text.replace(/^([a-z][a-z0-9+.-]*:\/\/)?[^/@]*@/i, '$1')
}

/** `https://host:port` (plus a path prefix if any), never with credentials. */
export function formatBaseUrl(url: URL): string {
  if (url.protocol === 'unix:') return `unix:${url.pathname}`
  const path = url.pathname === '/' ? '' : url.pathname.replace(/\/+$/, '')
  return `${url.protocol}//${url.host}${path}`
}

/**
 * Normalises a SHA-256 fingerprint (hex, colons/spaces optional, `sha256:`/`SHA256=` prefix
 * allowed) to `AB:CD:…` as in Node's `fingerprint256`.
 */
export function normalizeFingerprint(fingerprint: unknown): string {
  if (typeof fingerprint !== 'string') {
    throw new InvalidOptionError(
      'fingerprint',
      `Expected \`fingerprint\` to be a SHA-256 hex string, got ${describe(fingerprint)}`
    )
  }
  const hex = fingerprint
    .trim()
    .replace(/^sha-?256\s*[:=]?\s*/i, '')
    .replace(/[\s:]/g, '')
  if (!/^[0-9a-f]*$/i.test(hex)) {
    throw new InvalidOptionError(
      'fingerprint',
      `Expected \`fingerprint\` to contain only hex digits and colons, got \`${fingerprint}\``
    )
  }
  if (hex.length !== 64) {
    throw new InvalidOptionError(
      'fingerprint',
      `Expected \`fingerprint\` to be a SHA-256 fingerprint (64 hex digits, colons optional), got ${hex.length} hex digits${hex.length === 40 ? ' (that looks like SHA-1)' : ''}`
    )
  }
  return hex.toUpperCase().match(/../g)!.join(':')
}

/**
 * The URL to use after `HOST_IS_SLAVE [address]`: same scheme (and port, unless the address has
 * one), host replaced; bare IPv6 addresses are bracketed.
 */
export function masterUrlFrom(current: URL, masterAddress: string): URL {
  let address = masterAddress.trim()
  if (address === '') throw new TypeError('HOST_IS_SLAVE without a master address')
  // Tolerate a full URL where xapi sends a bare address.
  if (/^https?:\/\//i.test(address)) address = new URL(address).host
  if (current.protocol === 'unix:') {
    // The local socket of a supporter cannot reach the master; use its management address.
    return new URL(`https://${formatHostPort(address)}`)
  }
  const next = new URL(formatBaseUrl(current))
  const { host, port } = splitHostPort(address)
  next.hostname = host
  if (port !== undefined) next.port = port
  return next
}

/** Splits `host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 address. */
export function splitHostPort(address: string): { host: string; port?: string } {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(address)
  if (bracketed) {
    return bracketed[2] === undefined
      ? { host: `[${bracketed[1]}]` }
      : { host: `[${bracketed[1]}]`, port: bracketed[2] }
  }
  const colons = address.split(':').length - 1
  if (colons > 1) return { host: `[${address}]` } // bare IPv6
  if (colons === 1) {
    const [host = '', port = ''] = address.split(':')
    if (/^\d+$/.test(port)) return { host, port }
  }
  return { host: address }
}

/** `host` or `host:port` ready to put in a URL (IPv6 bracketed). */
export function formatHostPort(address: string): string {
  const { host, port } = splitHostPort(address)
  return port === undefined ? host : `${host}:${port}`
}
