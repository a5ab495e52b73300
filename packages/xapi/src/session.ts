import { sendCall } from './call.js'
import { XapiClientError, XapiError, XAPI_CLIENT_ERROR_CODES, isXapiError } from './errors.js'
import { formatBaseUrl, masterUrlFrom } from './options.js'
import type { RpcChannel } from './transport/rpc.js'

/** Follow at most this many HOST_IS_SLAVE answers in a row (guards against loops). */
const MAX_MASTER_HOPS = 3
const LOGOUT_TIMEOUT_MS = 5_000

export type SessionState = 'disconnected' | 'connecting' | 'connected' | 'closed'

export type SessionConfig = {
  readonly channel: RpcChannel
  readonly base: URL
  readonly user: string
  readonly password: string
  readonly originator: string
  readonly callTimeoutMs: number
  /** Told the master's URL and certificate thumbprint when a HOST_IS_SLAVE answer carried one. */
  readonly onMasterFingerprint?: (from: URL, master: URL, fingerprint: string) => void
}

export type SessionCallOptions = {
  readonly signal?: AbortSignal | undefined
  readonly timeoutMs?: number | undefined
}

/**
 * An XAPI session: one shared login, `HOST_IS_SLAVE` → reconnect to the master, one transparent
 * re-login on `SESSION_INVALID`, logout on close.
 */
export class Session {
  readonly #cfg: SessionConfig
  #base: URL
  #ref: string | undefined
  #login: Promise<string> | undefined
  #closed = false
  /** Every session ref this client obtained: hidden in errors even after a re-login. */
  readonly secrets = new Set<string>()

  constructor(cfg: SessionConfig) {
    this.#cfg = cfg
    this.#base = cfg.base
  }

  get base(): URL {
    return this.#base
  }

  get state(): SessionState {
    if (this.#closed) return 'closed'
    if (this.#ref !== undefined) return 'connected'
    return this.#login ? 'connecting' : 'disconnected'
  }

  /** The session ref, logging in first if needed (concurrent callers share one login). */
  async ref(signal?: AbortSignal): Promise<string> {
    this.#assertOpen()
    if (this.#ref !== undefined) return this.#ref
    this.#login ??= this.#doLogin().finally(() => (this.#login = undefined))
    return signal ? raceSignal(this.#login, signal) : this.#login
  }

  /** Calls `method` with the session ref prepended (unless `withSession` is false). */
  async call(
    method: string,
    params: readonly unknown[],
    opts: SessionCallOptions,
    withSession = true
  ): Promise<unknown> {
    let relogged = false
    for (let hops = 0; ;) {
      const ref = withSession ? (this.#ref ?? (await this.ref(opts.signal))) : undefined
      try {
        return await this.#send(method, ref === undefined ? params : [ref, ...params], opts)
      } catch (error) {
        if (ref !== undefined && !relogged && isXapiError(error, 'SESSION_INVALID')) {
          relogged = true
          if (this.#ref === ref) this.#ref = undefined
          continue
        }
        if (isXapiError(error, 'HOST_IS_SLAVE') && hops < MAX_MASTER_HOPS) {
          hops++
          // Sessions are pool-wide: keep the ref; SESSION_INVALID would trigger a re-login.
          this.#moveTo(error)
          continue
        }
        throw error
      }
    }
  }

  /** Logs out (best effort) and refuses further calls. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    const pending = this.#login
    const ref = this.#ref ?? (await pending?.catch(() => undefined))
    this.#ref = undefined
    if (ref === undefined) return
    try {
      await this.#send('session.logout', [ref], { timeoutMs: LOGOUT_TIMEOUT_MS })
    } catch {
      // The session expires server-side anyway.
    }
  }

  async #doLogin(): Promise<string> {
    const { user, password, originator } = this.#cfg
    let params: unknown[] = [user, password, '1.1', originator]
    for (let hops = 0; ; hops++) {
      try {
        const ref = await this.#send('session.login_with_password', params, {})
        if (typeof ref !== 'string' || ref === '') {
          throw new XapiClientError(
            XAPI_CLIENT_ERROR_CODES.PROTOCOL,
            `session.login_with_password returned no session ref`
          )
        }
        this.secrets.add(ref)
        if (this.#closed) {
          await this.#send('session.logout', [ref], { timeoutMs: LOGOUT_TIMEOUT_MS }).catch(
            () => {}
          )
          this.#assertOpen()
        }
        this.#ref = ref
        return ref
      } catch (error) {
        if (isXapiError(error, 'HOST_IS_SLAVE') && hops < MAX_MASTER_HOPS) {
          this.#moveTo(error)
          continue
        }
        // Servers predating `version`/`originator` only know the two-parameter form.
        if (isXapiError(error, 'MESSAGE_PARAMETER_COUNT_MISMATCH') && params.length > 2) {
          params = [user, password]
          continue
        }
        if (isXapiError(error, 'SESSION_AUTHENTICATION_FAILED')) {
          throw new XapiError(error.code, error.params, {
            ...(error.call && { call: error.call }),
            method: 'session.login_with_password',
            hint: `wrong user name or password for ${formatBaseUrl(this.#base)}`,
          })
        }
        throw error
      }
    }
  }

  #send(method: string, params: readonly unknown[], opts: SessionCallOptions): Promise<unknown> {
    return sendCall(this.#cfg.channel, this.#base, method, params, {
      signal: opts.signal,
      timeoutMs: opts.timeoutMs ?? this.#cfg.callTimeoutMs,
      secrets: this.secrets,
    })
  }

  #moveTo(error: XapiError): void {
    const address = error.params[0]
    if (address === undefined || address.trim() === '') throw error
    const next = masterUrlFrom(this.#base, address)
    if (error.masterFingerprint !== undefined) {
      this.#cfg.onMasterFingerprint?.(this.#base, next, error.masterFingerprint)
    }
    this.#base = next
  }

  #assertOpen(): void {
    if (this.#closed)
      throw new XapiClientError(XAPI_CLIENT_ERROR_CODES.CLOSED, 'The XAPI client is closed')
  }
}

/** Waits for `promise`, rejecting early with `signal.reason` (the shared work goes on). */
function raceSignal<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  signal.throwIfAborted()
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort)
        resolve(v)
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort)
        reject(e)
      }
    )
  })
}
