import http from 'node:http'
import https from 'node:https'
import net from 'node:net'
import type tls from 'node:tls'
import { XapiTlsError } from '../errors.js'
import type { PoolCertificate } from './pool-certificates.js'

/** The TLS policy shared by every connection of a client, to any pool member. */
export type TlsPolicy = {
  readonly ca: string | Buffer | undefined
  /** Normalised `AB:CD:…` SHA-256 fingerprint, or undefined. */
  readonly fingerprint: string | undefined
  readonly allowUnauthorized: boolean
}

// Idle sockets are dropped after 4 s, before the 5 s keep-alive timeout common on servers, so a
// socket is rarely reused just as the server closes it. Busy sockets are not affected.
const KEEP_ALIVE = {
  keepAlive: true,
  keepAliveMsecs: 1_000,
  scheduling: 'lifo',
  timeout: 4_000,
} as const

/**
 * Keep-alive agents applying one TLS policy. A pin is checked on every new TLS connection,
 * whatever the host, so following `HOST_IS_SLAVE` or a redirect can never bypass it.
 */
export class AgentPool {
  readonly #policy: TlsPolicy
  #https: https.Agent | undefined
  #http: http.Agent | undefined
  readonly #unix = new Map<string, http.Agent>()
  /** Extra pins for named hosts, learnt from an already verified host (see pinHost). */
  readonly #hostPins = new Map<string, string>()
  /** Certificates of the pool's hosts by address, vouched for by a master that matched the pin. */
  readonly #poolPins = new Map<string, Set<string>>()

  constructor(policy: TlsPolicy) {
    this.#policy = policy
  }

  /**
   * Also accepts `fingerprint` for `url`'s host. Only for thumbprints vouched for by a host whose
   * certificate already matched the pin (xapi's HOST_IS_SLAVE thumbprint header): the pin keeps
   * applying, it is extended along a verified chain.
   */
  pinHost(url: URL, fingerprint: string): void {
    this.#hostPins.set(hostKey(url.hostname, url.port || 443), fingerprint)
  }

  /**
   * Also accepts each of these certificates on its own host's address (any port): the
   * certificates of the pool's members as the pinned master reports them. Returns how many were
   * new.
   */
  trustPoolCertificates(certificates: Iterable<PoolCertificate>): number {
    let added = 0
    for (const { address, fingerprint } of certificates) {
      const key = hostName(address)
      const pins = this.#poolPins.get(key) ?? new Set<string>()
      const fp = fingerprint.toUpperCase()
      if (!pins.has(fp)) added++
      pins.add(fp)
      this.#poolPins.set(key, pins)
    }
    return added
  }

  /** The agent for `url` (`https:`, `http:` or `unix:/socket/path`). */
  agentFor(url: URL): http.Agent | https.Agent {
    switch (url.protocol) {
      case 'https:':
        return (this.#https ??= createTlsAgent(this.#policy, this.#hostPins, this.#poolPins))
      case 'http:':
        return (this.#http ??= new http.Agent(KEEP_ALIVE))
      case 'unix:': {
        const path = url.pathname
        let agent = this.#unix.get(path)
        if (agent === undefined) {
          agent = new http.Agent(KEEP_ALIVE)
          // Whatever host the request names, dial the socket.
          agent.createConnection = () => net.createConnection(path)
          this.#unix.set(path, agent)
        }
        return agent
      }
      default:
        throw new TypeError(`No agent for the ${url.protocol} scheme`)
    }
  }

  destroy(): void {
    this.#https?.destroy()
    this.#http?.destroy()
    for (const agent of this.#unix.values()) agent.destroy()
    this.#https = undefined
    this.#http = undefined
    this.#unix.clear()
  }
}

function hostName(host: string): string {
  return host.replace(/^\[|\]$/g, '').toLowerCase()
}

function hostKey(host: string, port: string | number): string {
  return `${hostName(host)}:${port}`
}

function createTlsAgent(
  policy: TlsPolicy,
  hostPins: ReadonlyMap<string, string>,
  poolPins: ReadonlyMap<string, ReadonlySet<string>>
): https.Agent {
  // Verification is done by hand on `secureConnect` (synchronously, before any request byte is
  // flushed) so that a pin can accept a self-signed certificate and refusals can name the
  // fingerprint the server presented. No TLS session cache: every connection is fully verified.
  const agent = new https.Agent({
    ...KEEP_ALIVE,
    ca: policy.ca,
    rejectUnauthorized: false,
    maxCachedSessions: 0,
  })
  const create = agent.createConnection.bind(agent) as (
    options: object,
    callback?: (err: Error | null, socket: net.Socket) => void
  ) => tls.TLSSocket
  agent.createConnection = ((options: tls.ConnectionOptions, callback?: never) => {
    const socket = create(options, callback)
    socket.once('secureConnect', () => {
      const err = verifyPeer(socket, policy, hostPins, poolPins, options)
      if (err) socket.destroy(err)
    })
    return socket
  }) as typeof agent.createConnection
  return agent
}

function verifyPeer(
  socket: tls.TLSSocket,
  policy: TlsPolicy,
  hostPins: ReadonlyMap<string, string>,
  poolPins: ReadonlyMap<string, ReadonlySet<string>>,
  options: tls.ConnectionOptions
): XapiTlsError | undefined {
  const host = options.host ?? options.servername ?? '?'
  const where = hostKey(host, options.port ?? 443)
  const cert = socket.getPeerCertificate()
  const actual = cert?.fingerprint256 || undefined
  if (policy.fingerprint !== undefined) {
    const hostPin = hostPins.get(where)
    if (
      actual !== undefined &&
      (actual === policy.fingerprint ||
        actual === hostPin ||
        poolPins.get(hostName(host))?.has(actual) === true)
    )
      return undefined
    const expected = hostPin ? `${policy.fingerprint} or ${hostPin}` : policy.fingerprint
    return new XapiTlsError(
      `TLS certificate of ${where} does not match the pinned fingerprint: expected ${expected}, got ${actual ?? 'no certificate'}`,
      { pinMismatch: true, ...(actual && { fingerprint: actual }) }
    )
  }
  if (policy.allowUnauthorized || socket.authorized) return undefined
  const reason = String(socket.authorizationError ?? 'unknown reason')
  return new XapiTlsError(
    `TLS certificate of ${where} is not trusted (${reason})${actual ? `; its SHA-256 fingerprint is ${actual}` : ''}. Pass \`fingerprint\` to pin it, \`ca\` to trust its CA, or \`allowUnauthorized: true\``,
    { cause: reason, ...(actual && { fingerprint: actual }) }
  )
}
