import type { DiskContent } from './disk/content.js'
import { XapiFailure } from './errors.js'
import type { SimFaults } from './faults.js'
import type { PoolDb, SimRecord } from './model/db.js'
import { RECORD_FACTORIES } from './model/records.js'
import { createVbd, createVdi, destroyVdi, refreshSr, refreshVdi } from './model/storage.js'
import {
  completeTask,
  createTask,
  failTask,
  isCancelRequested,
  taskHandle,
  type TaskHandle,
} from './model/tasks.js'
import { assertVmOperation, refreshVm, withVmOperation } from './model/vm-state.js'
import type { HostRuntime, SimSession, SimState } from './state.js'
import { encodeXmlRpcValue } from './wire/xml-rpc.js'

/**
 * What an HTTP action handler (`/export`, `/import`, …; see `http/index.ts`) gets from the
 * simulator for one request. One context per receiving host; everything is live.
 *
 * Failures: throw `new XapiFailure(code, params)` (also exported here as `ctx.XapiFailure`);
 * the handler decides how it maps to HTTP (401/403/500) and to the task (`tasks.fail`).
 */
export type SimContext = {
  /** The host that received the request. */
  readonly host: {
    readonly name: string
    readonly ref: string
    readonly uuid: string
    readonly url: string
  }
  /** Its pool. `masterUrl()`/`masterRef()` follow `faults.makeMaster`. */
  readonly pool: {
    readonly name: string
    /** The `pool` object's ref. */
    readonly ref: string
    masterRef(): string
    masterUrl(): string
    /** Every host of the pool, for 302 redirects (`url` = `http(s)://127.0.0.1:<port>`). */
    readonly hosts: readonly { readonly name: string; readonly ref: string; readonly url: string }[]
  }
  /**
   * The pool's objects by class and ref (wire field names). Mutate only via
   * `db.create(cls, record)` / `db.update(ref, patch)` / `db.destroy(ref)` so events follow;
   * `db.vdiContent` maps VDI refs to their {@link DiskContent}.
   */
  readonly db: PoolDb
  /** Complete default records by class (`records.VM({ name_label })`), for imports. */
  readonly records: typeof RECORD_FACTORIES
  /** The pool's `default_SR`, or undefined when unset/invalid. */
  defaultSr(): string | undefined
  /** The URL of a host of this pool by ref (undefined if unknown). */
  hostUrl(hostRef: string): string | undefined
  readonly storage: {
    /** Creates a VDI on `sr` with `content` (sizes from it), linked into `SR.VDIs`. */
    createVdi(opts: { sr: string; content: DiskContent; record?: SimRecord }): string
    /** Creates a VBD between a VM and a VDI (NULL VDI = empty CD). */
    createVbd(vm: string, vdi: string, record?: SimRecord): string
    /** Destroys a VDI (and its VBDs). */
    destroyVdi(vdi: string): void
    /** Re-reads a VDI's sizes from its content after writing blocks. */
    refreshVdi(vdi: string): void
    refreshSr(sr: string): void
  }
  readonly vm: {
    /** Throws the xapi error if `op` (e.g. `'export'`) is not allowed on the VM now. */
    assertOperation(vm: string, op: string): SimRecord
    /** Runs `fn` with `op` in the VM's `current_operations` (checked first). */
    withOperation<T>(
      vm: string,
      op: string,
      taskRef: string,
      fn: (vm: SimRecord) => Promise<T> | T
    ): Promise<T>
    /** Recomputes `allowed_operations` (after changing power_state, flags, …). */
    refresh(vm: string): void
  }
  readonly sessions: {
    /** A valid session of this pool by ref (cookie or query `session_id`), else undefined. */
    get(ref: string): SimSession | undefined
    /** HTTP Basic: logs in (throws `SESSION_AUTHENTICATION_FAILED`); log out after the request. */
    login(user: string, password: string): SimSession
    logout(ref: string): void
  }
  readonly tasks: {
    /** A new pending task on this host (cancellable unless told otherwise). */
    create(label: string, description?: string, opts?: { cancellable?: boolean }): string
    get(ref: string): SimRecord | undefined
    /** Progress/cancellation handle (`setProgress`, `checkCancelled`, `signal`). */
    handle(ref: string): TaskHandle
    setProgress(ref: string, progress: number): void
    /** Success; `value` is stored as its XML-RPC fragment (`<value>…</value>`) in `result`. */
    complete(ref: string, value?: unknown): void
    /** Success with a ready-made `result` string (e.g. `''` for exports). */
    completeRaw(ref: string, result: string): void
    /** Failure (`TASK_CANCELLED` → status `cancelled`). */
    fail(ref: string, code: string, params?: readonly string[]): void
    /** Whether `task.cancel` was requested. */
    isCancelRequested(ref: string): boolean
    /** Sets `allowed_operations` to `[cancel]` (true) or `[]` (false). */
    setCancellable(ref: string, cancellable: boolean): void
  }
  readonly clock: {
    /** 1 = real time; 0.01 = 100× faster. */
    readonly timeScale: number
    /** Sleeps `ms` simulated milliseconds; resolves early (no throw) if `signal` aborts or on close. */
    sleep(ms: number, signal?: AbortSignal): Promise<void>
  }
  readonly faults: SimFaults
  /** Aborted when the simulator closes. */
  readonly closing: AbortSignal
  readonly XapiFailure: typeof XapiFailure
  readonly encodeXmlRpcValue: (v: unknown) => string
}

/** Builds the context of one host (called once per host at start). */
export function createSimContext(state: SimState, host: HostRuntime): SimContext {
  const pool = host.pool
  const db = pool.db
  return {
    host: { name: host.name, ref: host.ref, uuid: host.uuid, url: host.url },
    pool: {
      name: pool.name,
      ref: pool.ref,
      masterRef: () => state.masterOf(pool).ref,
      masterUrl: () => state.masterOf(pool).url,
      hosts: pool.hosts,
    },
    db,
    records: RECORD_FACTORIES,
    defaultSr() {
      const sr = db.get(pool.ref)?.default_SR as string | undefined
      return sr !== undefined && db.has('SR', sr) ? sr : undefined
    },
    hostUrl: (ref) => pool.hosts.find((h) => h.ref === ref)?.url,
    storage: {
      createVdi: (opts) => createVdi(db, opts),
      createVbd: (vm, vdi, record) => createVbd(db, vm, vdi, record),
      destroyVdi: (vdi) => destroyVdi(db, vdi),
      refreshVdi: (vdi) => refreshVdi(db, vdi),
      refreshSr: (sr) => refreshSr(db, sr),
    },
    vm: {
      assertOperation: (vm, op) => assertVmOperation(db, vm, op),
      withOperation: (vm, op, taskRef, fn) => withVmOperation(db, vm, op, taskRef, fn),
      refresh: (vm) => refreshVm(db, vm),
    },
    sessions: {
      get(ref) {
        const s = state.sessions.get(ref)
        return s && s.pool === pool ? s : undefined
      },
      login: (user, password) => state.login(pool, user, password, 'HTTP Basic auth'),
      logout: (ref) => state.logout(ref),
    },
    tasks: {
      create: (label, description, opts) =>
        createTask(db, {
          name_label: label,
          name_description: description,
          hostRef: host.ref,
          cancellable: opts?.cancellable,
        }),
      get: (ref) => (db.classOf(ref) === 'task' ? db.get(ref) : undefined),
      handle: (ref) => taskHandle(db, ref),
      setProgress: (ref, p) => taskHandle(db, ref).setProgress(p),
      complete: (ref, value) => completeTask(db, ref, value),
      completeRaw(ref, result) {
        completeTask(db, ref, undefined)
        if (db.get(ref)) db.update(ref, { result })
      },
      fail: (ref, code, params = []) => failTask(db, ref, [code, ...params]),
      isCancelRequested: (ref) => isCancelRequested(db, ref),
      setCancellable(ref, on) {
        if (db.get(ref)) db.update(ref, { allowed_operations: on ? ['cancel'] : [] })
      },
    },
    clock: { timeScale: state.timeScale, sleep: (ms, signal) => state.sleep(ms, signal) },
    faults: state.faults,
    closing: state.closing.signal,
    XapiFailure,
    encodeXmlRpcValue,
  }
}
