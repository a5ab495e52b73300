import { XapiFailure } from './errors.js'
import type { GuestBehaviour } from './model/db.js'
import { refreshVm } from './model/vm-state.js'
import type { SimState } from './state.js'
import { TransferFaults } from './transfer-faults.js'

type MethodFailure = { method: string; code: string; params: string[]; times?: number }
type Drop = { method?: string; times?: number }

/**
 * Fault injection. One object per simulator; other modules (e.g. transfer faults) may add
 * their own methods/state to it and register a reset with {@link SimFaults.onClear}.
 */
export class SimFaults {
  readonly #state: SimState
  #expireAfter: number | undefined
  #failures: MethodFailure[] = []
  #drops: Drop[] = []
  #latencyMs = 0
  readonly #clearHooks: (() => void)[] = []
  /** Faults of `/export` and `/import` transfers (drop, stall, throttle, corrupt, redirect). */
  readonly transfer = new TransferFaults()

  constructor(state: SimState) {
    this.#state = state
  }

  /** Transfers answer `302 Found` to host `to` of the pool (`times` requests, default forever). */
  redirectTransfers(opts: { to: string; times?: number }): void {
    this.transfer.redirect(opts)
  }

  /** Every session becomes invalid (SESSION_INVALID) once it has been used for `n` calls. */
  expireSessionsAfter(n: number): void {
    if (!(n >= 0)) throw new TypeError(`Expected \`n\` to be a non-negative number, got ${n}`)
    this.#expireAfter = n
  }

  /** Failover: `hostName` becomes master of `poolName`; the old master answers HOST_IS_SLAVE. */
  makeMaster(poolName: string, hostName: string): void {
    const pool = this.#state.pool(poolName)
    const host = pool.hosts.find((h) => h.name === hostName)
    if (!host) throw new Error(`no host named ${hostName} in pool ${poolName}`)
    pool.db.update(pool.ref, { master: host.ref })
    for (const s of this.#state.sessions.values()) if (s.pool === pool) s.hostRef = host.ref
  }

  /**
   * Fails `method` with `code(params)` (`times` calls, default forever). For a method called as
   * `Async.<method>` the task is created and fails with it; naming `Async.X` fails the call itself.
   */
  failMethod(
    method: string,
    code: string,
    params: string[] = [],
    opts: { times?: number } = {}
  ): void {
    this.#failures.push({ method, code, params, times: opts.times })
  }

  /** Delays every RPC answer by `ms` real milliseconds (not scaled). */
  latencyMs(ms: number): void {
    this.#latencyMs = Math.max(0, ms)
  }

  /** Destroys the connection of matching RPCs without answering (`times` calls, default forever). */
  dropConnections(opts: { times?: number; method?: string } = {}): void {
    this.#drops.push({ ...opts })
  }

  /** Gives a VM (by ref or name_label) a guest behaviour for clean shutdown/reboot/suspend. */
  stubbornVm(
    vmRefOrName: string,
    behaviour: GuestBehaviour['behaviour'],
    opts: { cleanShutdownS?: number } = {}
  ): void {
    const hit =
      this.#state.db.find('VM', (_r, ref) => ref === vmRefOrName) ??
      this.#state.db.find('VM', (r) => r.name_label === vmRefOrName)
    if (!hit) throw new Error(`no VM ${vmRefOrName}`)
    const db = this.#state.db.poolOf(hit[0])!
    db.guests.set(hit[0], { behaviour, cleanShutdownS: opts.cleanShutdownS })
    refreshVm(db, hit[0])
  }

  /** Registers a reset to run on {@link clear} (for faults defined elsewhere). */
  onClear(fn: () => void): void {
    this.#clearHooks.push(fn)
  }

  /** Removes every fault (guest behaviours back to normal, latency 0, …). */
  clear(): void {
    this.#expireAfter = undefined
    this.#failures = []
    this.#drops = []
    this.#latencyMs = 0
    for (const p of this.#state.pools) {
      const vms = [...p.db.guests.keys()]
      p.db.guests.clear()
      for (const vm of vms) refreshVm(p.db, vm)
    }
    this.transfer.clear()
    for (const fn of this.#clearHooks) fn()
  }

  // ---- used by the dispatcher --------------------------------------------------------------

  /** @internal */
  get currentLatencyMs(): number {
    return this.#latencyMs
  }

  /** @internal Whether this call's connection must be dropped (consumes one `times`). */
  shouldDrop(method: string): boolean {
    const d = this.#drops.find((x) => x.method === undefined || x.method === method)
    if (!d) return false
    if (d.times !== undefined && --d.times <= 0) this.#drops.splice(this.#drops.indexOf(d), 1)
    return true
  }

  /** @internal The failure injected for `method`, if any (consumes one `times`). */
  takeFailure(method: string): XapiFailure | undefined {
    const f = this.#failures.find((x) => x.method === method)
    if (!f) return undefined
    if (f.times !== undefined && --f.times <= 0) this.#failures.splice(this.#failures.indexOf(f), 1)
    return new XapiFailure(f.code, f.params)
  }

  /** @internal Whether a session that has made `calls` calls is expired. */
  sessionExpired(calls: number): boolean {
    return this.#expireAfter !== undefined && calls > this.#expireAfter
  }
}
