import type http from 'node:http'
import type https from 'node:https'
import { isReadOnlyMethod } from './call.js'
import { XapiClientError, XapiProtocolError, XAPI_CLIENT_ERROR_CODES } from './errors.js'
import { watchEvents, type WatchEventsOptions, type XapiEvent } from './events.js'
import { Limiter } from './limiter.js'
import {
  formatBaseUrl,
  normalizeFingerprint,
  resolveOptions,
  type ClientOptions,
  type ResolvedClientOptions,
} from './options.js'
import { normalizeRecord, type RecordOf, type XapiClass } from './records.js'
import { isXapiError, type Ref } from '@xapi-ops/xapi-formats'
import { Session, type SessionState } from './session.js'
import { TaskWatcher, type WatchTaskOptions } from './task-watcher.js'
import { callAsync, createTask, type CallAsyncOptions, type TaskHandle } from './tasks.js'
import { AgentPool } from './transport/http-agent.js'
import { poolCertificates } from './transport/pool-certificates.js'
import { RpcChannel } from './transport/rpc.js'

/** Per-call options of `callWith`. */
export type CallOptions = {
  readonly signal?: AbortSignal | undefined
  /** Overrides `callTimeoutMs` for this call. */
  readonly timeoutMs?: number | undefined
}

/**
 * A client for one pool. Logs in lazily (or eagerly with `connect`), follows the master, and
 * re-logs in when the session expires. Dispose with `close()` or `await using`.
 *
 * @example
 * await using xapi = await connect({ url: 'https://pool.example', user: 'root', password })
 * const vms = await xapi.getAllRecords('VM')
 */
export class XapiClient {
  /** Options with defaults applied (no password). */
  readonly options: ResolvedClientOptions
  readonly #agents: AgentPool
  readonly #channel: RpcChannel
  readonly #session: Session
  readonly #limiter: Limiter
  readonly #tasks: TaskWatcher
  #closing: Promise<void> | undefined
  /** A pool-certificate lookup in flight (see trustPoolCertificates). */
  #learning: Promise<boolean> | undefined
  /** Ends long polls (event.from) when the client closes. */
  readonly #closed = new AbortController()

  constructor(options: ClientOptions) {
    const { resolved, password, baseUrl } = resolveOptions(options)
    this.options = resolved
    this.#agents = new AgentPool({
      ca: resolved.ca,
      fingerprint: resolved.fingerprint,
      allowUnauthorized: resolved.allowUnauthorized,
    })
    // With a pin, ask supporters for the master's thumbprint (xapi ≥ Dec 2023) so a move to a
    // master with its own self-signed certificate stays pinned.
    const pinned = resolved.fingerprint !== undefined
    this.#channel = new RpcChannel(
      resolved.transport,
      (url) => this.#agents.agentFor(url),
      pinned ? { 'x-xenapi-request-host-certificate-thumbprint': 'sha-256:master' } : undefined
    )
    this.#session = new Session({
      channel: this.#channel,
      base: baseUrl,
      user: resolved.user,
      password,
      originator: resolved.originator,
      callTimeoutMs: resolved.callTimeoutMs,
      onMasterFingerprint: (from, master, fingerprint) => {
        // Trust it only from a host whose certificate matched the pin.
        if (!pinned || from.protocol !== 'https:' || master.protocol !== 'https:') return
        try {
          this.#agents.pinHost(master, normalizeFingerprint(fingerprint))
        } catch {
          // Not a SHA-256 thumbprint: ignore it, the pin alone applies.
        }
      },
    })
    this.#limiter = new Limiter(resolved.callConcurrency)
    this.#tasks = new TaskWatcher(this)
  }

  /** The current (master) base URL, never with credentials. */
  get url(): string {
    return formatBaseUrl(this.#session.base)
  }

  /** `disconnected`, `connecting`, `connected` or `closed`. */
  get state(): SessionState {
    return this.#session.state
  }

  /** The protocol in use (`auto` until the first answer in auto mode). */
  get transport(): 'auto' | 'json-rpc' | 'xml-rpc' {
    return this.#channel.protocol
  }

  /** Logs in now (calls log in lazily otherwise). Throws `XapiError` on bad credentials. */
  async login(signal?: AbortSignal): Promise<void> {
    await this.#session.ref(signal)
  }

  /** Calls `method` with the session ref prepended, e.g. `call('VM.get_power_state', vm)`. */
  call<T = unknown>(method: string, ...params: unknown[]): Promise<T> {
    return this.callWith<T>(method, params, {})
  }

  /** `call` with a signal and/or a timeout of its own. */
  async callWith<T = unknown>(
    method: string,
    params: unknown[],
    opts: CallOptions = {}
  ): Promise<T> {
    this.#assertOpen()
    if (typeof method !== 'string' || !/^[A-Za-z0-9_.]+$/.test(method)) {
      throw new XapiClientError(
        XAPI_CLIENT_ERROR_CODES.INVALID_CALL,
        `Invalid XAPI method name: ${String(method)}`
      )
    }
    if (/^session\.(login|logout|slave_local|local_logout)/.test(method)) {
      throw new XapiClientError(
        XAPI_CLIENT_ERROR_CODES.INVALID_CALL,
        `${method} is managed by the client: use login() / close()`
      )
    }
    if (this.options.readOnly && !isReadOnlyMethod(method)) {
      throw new XapiClientError(
        XAPI_CLIENT_ERROR_CODES.READ_ONLY,
        `Refusing ${method}: the client is read-only (only getters, event.from and system.* are allowed)`
      )
    }
    opts.signal?.throwIfAborted()
    // system.* takes no session.
    const withSession = !method.startsWith('system.')
    if (method === 'event.from') {
      // Long polls hold no concurrency slot and end when the client closes.
      const signal = opts.signal
        ? AbortSignal.any([opts.signal, this.#closed.signal])
        : this.#closed.signal
      return this.#session.call(method, params, { ...opts, signal }, withSession) as Promise<T>
    }
    const run = () => this.#session.call(method, params, opts, withSession) as Promise<T>
    return this.#limiter.run(run, opts.signal)
  }

  /**
   * Runs `Async.<method>` and waits for its task: resolves with the decoded result, rejects with
   * the task's `XapiError` (`.task` set). Aborting `signal` cancels the task; it is always
   * destroyed. E.g. `callAsync('VM.clean_shutdown', [vm], { onProgress })`.
   */
  callAsync<T = unknown>(method: string, params: unknown[], opts?: CallAsyncOptions): Promise<T> {
    return callAsync<T>(this, this.#tasks, method, params, opts)
  }

  /**
   * Logs out a session that is not this client's own: the one `host.migrate_receive` makes for
   * the source of a cross-pool migration (its `session_id`), which xapi leaves open. A session
   * already gone is not an error. Not for the client's own session: `close()` ends that one.
   */
  async logoutSession(ref: string, opts: CallOptions = {}): Promise<void> {
    this.#assertOpen()
    if (typeof ref !== 'string' || !ref.startsWith('OpaqueRef:')) {
      throw new XapiClientError(
        XAPI_CLIENT_ERROR_CODES.INVALID_CALL,
        'logoutSession expects a session ref (OpaqueRef:…)'
      )
    }
    if (this.#session.state === 'connected' && ref === (await this.#session.ref())) {
      throw new XapiClientError(
        XAPI_CLIENT_ERROR_CODES.INVALID_CALL,
        'logoutSession is for other sessions: use close() to end this client'
      )
    }
    // A session ref is a credential: kept out of error messages like the client's own.
    this.#session.secrets.add(ref)
    try {
      await this.#limiter.run(
        () => this.#session.call('session.logout', [ref], opts, false),
        opts.signal
      )
    } catch (error) {
      if (isXapiError(error, 'SESSION_INVALID')) return
      throw error
    }
  }

  /** Creates a caller-owned task, e.g. to pass as `task_id` to an HTTP transfer. */
  createTask(label: string, description?: string): Promise<TaskHandle> {
    return createTask(this, this.#tasks, label, description)
  }

  /** Waits for a task this client did not create with `callAsync` (it is not destroyed). */
  watchTask(ref: Ref<'task'>, opts?: WatchTaskOptions): Promise<unknown> {
    this.#assertOpen()
    return this.#tasks.wait(ref, opts)
  }

  /** An async iterator over `event.from` for `classes` (e.g. `['vm', 'task']`). */
  watchEvents(
    classes: string[],
    opts?: WatchEventsOptions
  ): AsyncGenerator<XapiEvent, void, undefined> {
    return watchEvents(this, classes, opts)
  }

  /** `<cls>.get_all_records` as a Map, records normalised (ints as numbers, dates as Dates). */
  async getAllRecords<C extends XapiClass>(
    cls: C,
    opts: CallOptions = {}
  ): Promise<Map<Ref<C>, RecordOf<C>>> {
    const all = await this.callWith<Record<string, RecordOf<C>>>(`${cls}.get_all_records`, [], opts)
    if (typeof all !== 'object' || all === null || Array.isArray(all)) {
      throw new XapiProtocolError(`${cls}.get_all_records did not return a map of records`)
    }
    const map = new Map<Ref<C>, RecordOf<C>>()
    for (const ref of Object.keys(all)) map.set(ref as Ref<C>, normalizeRecord(cls, all[ref]!))
    return map
  }

  /** `<cls>.get_record`, normalised like `getAllRecords`. */
  async getRecord<C extends XapiClass>(
    cls: C,
    ref: Ref<C>,
    opts: CallOptions = {}
  ): Promise<RecordOf<C>> {
    return normalizeRecord(cls, await this.callWith<RecordOf<C>>(`${cls}.get_record`, [ref], opts))
  }

  /** Logs out and closes idle connections. Idempotent. */
  close(): Promise<void> {
    if (!this.#closing) {
      this.#closed.abort(
        new XapiClientError(XAPI_CLIENT_ERROR_CODES.CLOSED, 'The XAPI client is closed')
      )
      this.#closing = this.#session.close().finally(() => this.#agents.destroy())
    }
    return this.#closing
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close()
  }

  /** The session ref, logging in if needed. For transfer code only: never print it. */
  sessionRef(signal?: AbortSignal): Promise<string> {
    return this.#session.ref(signal)
  }

  /**
   * With a pinned `fingerprint`: learns the certificates of the pool's hosts from the master
   * (whose certificate matched the pin), so that a transfer redirected to a member with its own
   * self-signed certificate stays verified. Asks again on every call (a host may have joined);
   * concurrent calls share one lookup. Resolves with whether the master reported any
   * certificate; without a pin, or over http or the dom0 socket, does nothing (false).
   * Transfers call it on a pin mismatch, then dial the host once more.
   */
  trustPoolCertificates(signal?: AbortSignal): Promise<boolean> {
    if (this.options.fingerprint === undefined || this.#session.base.protocol !== 'https:')
      return Promise.resolve(false)
    this.#learning ??= poolCertificates(this, signal)
      .then((certificates) => {
        this.#agents.trustPoolCertificates(certificates)
        return certificates.length > 0
      })
      .finally(() => (this.#learning = undefined))
    return this.#learning
  }

  /** The current master base URL (no credentials; `unix:/path` for the local socket). */
  hostUrl(): URL {
    return new URL(this.#session.base.href)
  }

  /**
   * The keep-alive agent for `url` with this client's TLS policy (pin/CA checked on every new
   * connection, to any host). For `unix:` URLs the agent dials the socket whatever the host.
   */
  agentFor(url: URL): http.Agent | https.Agent {
    return this.#agents.agentFor(url)
  }

  #assertOpen(): void {
    if (this.#closing)
      throw new XapiClientError(XAPI_CLIENT_ERROR_CODES.CLOSED, 'The XAPI client is closed')
  }
}

/** Creates a client that logs in on its first call. Throws `InvalidOptionError` eagerly. */
export function createClient(options: ClientOptions): XapiClient {
  return new XapiClient(options)
}

/** Creates a client and logs in (rejects on bad credentials or an unreachable host). */
export async function connect(
  options: ClientOptions & { signal?: AbortSignal }
): Promise<XapiClient> {
  const client = new XapiClient(options)
  try {
    await client.login(options.signal)
  } catch (error) {
    await client.close()
    throw error
  }
  return client
}
