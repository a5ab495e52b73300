import { randomUUID } from 'node:crypto'
import type { DiskContent } from '../disk/content.js'
import { XapiFailure } from '../errors.js'
import { invalidateEncoding, registerCacheable } from '../wire/xml-rpc.js'

/** One object's fields, with the datamodel's wire names (`name_label`, `power_state`, …). */
export type SimRecord = Record<string, any>

/** A change in the event log (`event.from`). */
export type SimChange = {
  gen: number
  cls: string
  ref: string
  op: 'add' | 'mod' | 'del'
  at: Date
}

/** Generations at which an object was created / last modified (and deleted, for tombstones). */
export type SimStat = { cls: string; created: number; modified: number; deleted: number }

/** Per-VM guest behaviour (see `faults.stubbornVm`). */
export type GuestBehaviour = {
  behaviour: 'normal' | 'slow' | 'ignore' | 'no-pv'
  /** slow: how long a clean shutdown takes; ignore: how long xapi waits before giving up. */
  cleanShutdownS?: number
}

const LOG_MAX = 200_000

/** Makes a fresh `OpaqueRef:<uuid>`. */
export function newRef(): string {
  return `OpaqueRef:${randomUUID()}`
}

/**
 * The database of one pool: objects by class and ref, a uuid index, and the event log that
 * `event.from` reads. Mutate through `create`/`update`/`destroy` so that events (and caches) follow.
 */
export class PoolDb {
  readonly name: string
  /** Disk contents by VDI ref. */
  readonly vdiContent = new Map<string, DiskContent>()
  /** Guest behaviours by VM ref (absent = normal). */
  readonly guests = new Map<string, GuestBehaviour>()
  /** Monotonic generation, bumped by every change. */
  generation = 0
  readonly #classes = new Map<string, Map<string, SimRecord>>()
  readonly #classOf = new Map<string, string>()
  readonly #uuids = new Map<string, string>()
  #log: SimChange[] = []
  readonly #stats = new Map<string, SimStat>()
  readonly #tombstones = new Map<string, SimStat>()
  readonly #waiters = new Set<() => void>()

  constructor(name: string) {
    this.name = name
  }

  /** The objects of one class (live map: do not mutate it directly). */
  all(cls: string): ReadonlyMap<string, SimRecord> {
    return this.#classes.get(cls) ?? new Map()
  }

  /** Class names that have (or had) objects. */
  classes(): string[] {
    return [...this.#classes.keys()]
  }

  get(ref: string): SimRecord | undefined {
    const cls = this.#classOf.get(ref)
    return cls === undefined ? undefined : this.#classes.get(cls)?.get(ref)
  }

  classOf(ref: string): string | undefined {
    return this.#classOf.get(ref)
  }

  /** The record of `ref` if it is a `cls`, else `HANDLE_INVALID [cls, ref]`. */
  require(cls: string, ref: unknown): SimRecord {
    const r = typeof ref === 'string' ? this.#classes.get(cls)?.get(ref) : undefined
    if (!r) throw new XapiFailure('HANDLE_INVALID', [cls, String(ref)])
    return r
  }

  has(cls: string, ref: unknown): boolean {
    return typeof ref === 'string' && (this.#classes.get(cls)?.has(ref) ?? false)
  }

  refByUuid(uuid: string): string | undefined {
    return this.#uuids.get(uuid)
  }

  find(cls: string, pred: (r: SimRecord, ref: string) => boolean): [string, SimRecord] | undefined {
    for (const [ref, r] of this.all(cls)) if (pred(r, ref)) return [ref, r]
    return undefined
  }

  filter(
    cls: string,
    pred: (r: SimRecord, ref: string) => boolean = () => true
  ): [string, SimRecord][] {
    const out: [string, SimRecord][] = []
    for (const [ref, r] of this.all(cls)) if (pred(r, ref)) out.push([ref, r])
    return out
  }

  /** Adds an object (a fresh ref unless given); `record.uuid` is filled in when missing. */
  create(cls: string, record: SimRecord, ref: string = newRef()): string {
    if (typeof record.uuid !== 'string' || record.uuid === '') record.uuid = randomUUID()
    let m = this.#classes.get(cls)
    if (!m) this.#classes.set(cls, (m = new Map()))
    m.set(ref, record)
    registerCacheable(record)
    this.#classOf.set(ref, cls)
    this.#uuids.set(record.uuid as string, ref)
    this.#record(cls, ref, 'add')
    return ref
  }

  /** Changes fields of an object and logs a `mod` event. */
  update(ref: string, patch: SimRecord): SimRecord {
    const r = this.get(ref)
    if (!r) throw new XapiFailure('HANDLE_INVALID', [this.#classOf.get(ref) ?? 'unknown', ref])
    Object.assign(r, patch)
    this.#record(this.#classOf.get(ref)!, ref, 'mod')
    return r
  }

  /** Logs a `mod` event for an object changed in place. */
  touch(ref: string): void {
    const cls = this.#classOf.get(ref)
    if (cls !== undefined) this.#record(cls, ref, 'mod')
  }

  destroy(ref: string): void {
    const cls = this.#classOf.get(ref)
    if (cls === undefined) return
    const r = this.#classes.get(cls)?.get(ref)
    this.#classes.get(cls)?.delete(ref)
    this.#classOf.delete(ref)
    if (r) this.#uuids.delete(r.uuid as string)
    this.vdiContent.delete(ref)
    this.guests.delete(ref)
    this.#record(cls, ref, 'del')
  }

  /** Adds `value` to the set field `field` of `ref` (no duplicates). */
  addToSet(ref: string, field: string, value: string): void {
    const r = this.get(ref)
    if (!r) return
    const set = r[field] as string[]
    if (!set.includes(value)) this.update(ref, { [field]: [...set, value] })
  }

  removeFromSet(ref: string, field: string, value: string): void {
    const r = this.get(ref)
    if (!r) return
    const set = r[field] as string[]
    if (set.includes(value)) this.update(ref, { [field]: set.filter((x) => x !== value) })
  }

  #record(cls: string, ref: string, op: SimChange['op']): void {
    const r = this.#classes.get(cls)?.get(ref)
    if (r) invalidateEncoding(r)
    const gen = ++this.generation
    if (op === 'add') {
      this.#stats.set(ref, { cls, created: gen, modified: gen, deleted: 0 })
    } else if (op === 'mod') {
      const st = this.#stats.get(ref)
      if (st) st.modified = gen
    } else {
      const st = this.#stats.get(ref)
      this.#stats.delete(ref)
      this.#tombstones.set(ref, {
        cls,
        created: st?.created ?? 0,
        modified: st?.modified ?? 0,
        deleted: gen,
      })
      if (this.#tombstones.size > LOG_MAX) {
        const oldest = this.#tombstones.keys().next().value
        if (oldest !== undefined) this.#tombstones.delete(oldest)
      }
    }
    this.#log.push({ gen, cls, ref, op, at: new Date() })
    if (this.#log.length > LOG_MAX) this.#log = this.#log.slice(LOG_MAX / 2)
    if (this.#waiters.size) {
      const ws = [...this.#waiters]
      this.#waiters.clear()
      for (const w of ws) w()
    }
  }

  /** Created/modified generations of a live object. */
  stat(ref: string): SimStat | undefined {
    return this.#stats.get(ref)
  }

  /** Created/modified/deleted generations of a deleted object (bounded memory). */
  tombstone(ref: string): SimStat | undefined {
    return this.#tombstones.get(ref)
  }

  /** Every tombstone, oldest deletion first. */
  tombstones(): IterableIterator<[string, SimStat]> {
    return this.#tombstones.entries()
  }

  /** The generation of the oldest change still in the log (0 when it was never trimmed). */
  get oldestLoggedGeneration(): number {
    return this.#log[0]?.gen ?? this.generation
  }

  /** Changes after generation `gen`, oldest first. */
  changesSince(gen: number): SimChange[] {
    const log = this.#log
    let lo = 0
    let hi = log.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (log[mid]!.gen <= gen) lo = mid + 1
      else hi = mid
    }
    return log.slice(lo)
  }

  /** Resolves at the next change, or after `ms`, or when `signal` aborts. */
  waitForChange(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer)
        this.#waiters.delete(done)
        signal?.removeEventListener('abort', done)
        resolve()
      }
      const timer = setTimeout(done, ms)
      this.#waiters.add(done)
      signal?.addEventListener('abort', done, { once: true })
    })
  }
}

/** All pools of one simulator process. */
export class SimDb {
  readonly pools = new Map<string, PoolDb>()

  pool(name: string): PoolDb {
    const p = this.pools.get(name)
    if (!p) throw new Error(`no pool named ${name}`)
    return p
  }

  /** The pool holding `ref`. */
  poolOf(ref: string): PoolDb | undefined {
    for (const p of this.pools.values()) if (p.classOf(ref) !== undefined) return p
    return undefined
  }

  /** The object `ref`, in whichever pool holds it. */
  get(ref: string): SimRecord | undefined {
    return this.poolOf(ref)?.get(ref)
  }

  /** The first object of `cls` (any pool) matching `pred`, as `[ref, record]`. */
  find(cls: string, pred: (r: SimRecord, ref: string) => boolean): [string, SimRecord] | undefined {
    for (const p of this.pools.values()) {
      const hit = p.find(cls, pred)
      if (hit) return hit
    }
    return undefined
  }

  /** All objects of `cls` (every pool) matching `pred`. */
  filter(cls: string, pred?: (r: SimRecord, ref: string) => boolean): [string, SimRecord][] {
    return [...this.pools.values()].flatMap((p) => p.filter(cls, pred))
  }
}
