import { randomUUID } from 'node:crypto'
import { setTimeout as delay } from 'node:timers/promises'
import { XapiFailure } from './errors.js'
import type { SimFaults } from './faults.js'
import { newRef, SimDb, type PoolDb } from './model/db.js'

/** One simulated host: its own listening port. */
export type HostRuntime = {
  name: string
  ref: string
  uuid: string
  /** `http(s)://127.0.0.1:<port>` */
  url: string
  port: number
  pool: PoolRuntime
  /** The host's TLS certificate (PEM) and its SHA-256 fingerprint, with TLS. */
  certificate?: { cert: string; fingerprint: string }
}

/** One simulated pool. */
export type PoolRuntime = {
  name: string
  /** The `pool` object's ref. */
  ref: string
  db: PoolDb
  hosts: HostRuntime[]
}

/** A session (one table for XML-RPC, JSON-RPC and HTTP handlers). */
export type SimSession = {
  ref: string
  uuid: string
  pool: PoolRuntime
  user: string
  originator: string
  hostRef: string
  created: Date
  lastActive: Date
  /** Calls made with this session (for `faults.expireSessionsAfter`). */
  calls: number
}

/** One RPC as recorded in `sim.calls`. Secrets (passwords, session refs) are redacted. */
export type SimCall = {
  method: string
  params: unknown[]
  /** The uuid (not the ref) of the session used, if any. */
  session?: string
  /** Name of the host that received the call. */
  host: string
  transport: 'xml-rpc' | 'json-rpc'
  durationMs: number
  outcome: 'success' | 'failure' | 'error'
  /** ErrorDescription of a failure (or the parse error of a malformed request). */
  error?: string[]
}

export const REDACTED = '***'
const MAX_CALLS = 200_000

/** The shared mutable state of one simulator instance. */
export class SimState {
  readonly db = new SimDb()
  readonly pools: PoolRuntime[] = []
  readonly sessions = new Map<string, SimSession>()
  readonly calls: SimCall[] = []
  readonly timeScale: number
  readonly user: string
  readonly password: string
  readonly scheme: 'http' | 'https'
  /** SHA-256 fingerprint of the simulator's certificate: the first host of each pool serves it. */
  fingerprint?: string
  /** Set right after construction (the faults need the state). */
  faults!: SimFaults
  /** Aborted on close: ends long polls and background work. */
  readonly closing = new AbortController()

  constructor(opts: {
    timeScale: number
    user: string
    password: string
    scheme: 'http' | 'https'
  }) {
    this.timeScale = opts.timeScale
    this.user = opts.user
    this.password = opts.password
    this.scheme = opts.scheme
  }

  /** Sleeps `ms` of simulated time (real time × timeScale). Resolves early (no throw) on abort. */
  async sleep(ms: number, signal?: AbortSignal): Promise<void> {
    const real = ms * this.timeScale
    if (!(real > 0)) return
    const signals = [this.closing.signal, ...(signal ? [signal] : [])]
    const s = signals.length === 1 ? signals[0]! : AbortSignal.any(signals)
    if (s.aborted) return
    await delay(real, undefined, { signal: s }).catch(() => {})
  }

  pool(name: string): PoolRuntime {
    const p = this.pools.find((x) => x.name === name)
    if (!p) throw new Error(`no pool named ${name}`)
    return p
  }

  /** The current master of a pool (from `pool.master`). */
  masterOf(pool: PoolRuntime): HostRuntime {
    const masterRef = pool.db.get(pool.ref)?.master as string
    return pool.hosts.find((h) => h.ref === masterRef) ?? pool.hosts[0]!
  }

  hostByRef(ref: string): HostRuntime | undefined {
    for (const p of this.pools) for (const h of p.hosts) if (h.ref === ref) return h
    return undefined
  }

  /** `session.login_with_password` semantics (HOST_IS_SLAVE is checked by the caller). */
  login(pool: PoolRuntime, user: unknown, password: unknown, originator = ''): SimSession {
    if (user !== this.user || password !== this.password) {
      throw new XapiFailure('SESSION_AUTHENTICATION_FAILED', [
        String(user),
        'Authentication failure',
      ])
    }
    return this.createSession(pool, originator)
  }

  /** A new session on `pool` for the simulated user (login checks done by the caller). */
  createSession(pool: PoolRuntime, originator = '', user = this.user): SimSession {
    const now = new Date()
    const s: SimSession = {
      ref: newRef(),
      uuid: randomUUID(),
      pool,
      user,
      originator,
      hostRef: this.masterOf(pool).ref,
      created: now,
      lastActive: now,
      calls: 0,
    }
    this.sessions.set(s.ref, s)
    return s
  }

  /** A valid session of `pool` (or any pool when omitted), else `SESSION_INVALID [ref]`. */
  session(ref: unknown, pool?: PoolRuntime): SimSession {
    const s = typeof ref === 'string' ? this.sessions.get(ref) : undefined
    if (!s || (pool && s.pool !== pool)) throw new XapiFailure('SESSION_INVALID', [String(ref)])
    return s
  }

  logout(ref: string): void {
    this.sessions.delete(ref)
  }

  /** Appends to `calls` (bounded: the oldest half is dropped past 200,000 entries). */
  record(call: SimCall): void {
    this.calls.push(call)
    if (this.calls.length > MAX_CALLS) this.calls.splice(0, MAX_CALLS / 2)
  }
}
