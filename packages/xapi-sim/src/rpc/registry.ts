import { XapiFailure } from '../errors.js'
import type { PoolDb } from '../model/db.js'
import type { TaskHandle } from '../model/tasks.js'
import type { HostRuntime, PoolRuntime, SimSession, SimState } from '../state.js'

/** What a method implementation receives. */
export type CallCtx = {
  state: SimState
  /** The pool of the receiving host. */
  pool: PoolRuntime
  db: PoolDb
  /** The host that received the call. */
  host: HostRuntime
  session: SimSession | undefined
  /** The task the call runs in (a DB task for Async.* calls). */
  task: TaskHandle
  /** The method name without `Async.`. */
  method: string
  /**
   * The call came over the local unix socket (xapi's `Context.preauth`: the caller is trusted as
   * root, logins need no password).
   */
  local?: boolean
}

export type MethodSpec = {
  /**
   * Parameter counts, session excluded: one count, or the full count then the shorter ones that
   * parameters with defaults allow (the smallest is the mandatory count that xapi reports in
   * MESSAGE_PARAMETER_COUNT_MISMATCH; with defaults, any count from it up is accepted).
   */
  arity: number[]
  /** Takes a session ref as first parameter. @default true */
  session?: boolean
  /** Has an `Async.` variant. @default false */
  async?: boolean
  /** Callable on a non-master host (no HOST_IS_SLAVE). @default false */
  anyHost?: boolean
  run(ctx: CallCtx, args: unknown[]): unknown
}

/** Explicitly defined methods (generic getters/setters are resolved in generic.ts). */
export const METHODS = new Map<string, MethodSpec>()

/** Registers a method. */
export function defineMethod(name: string, spec: MethodSpec): void {
  METHODS.set(name, spec)
}

/** Coerces an int parameter (xen-api sends ints as strings). */
export function toInt(v: unknown, field = 'int'): number {
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN
  if (!Number.isFinite(n)) throw fieldTypeError(field)
  return Math.trunc(n)
}

/** Coerces a float parameter. */
export function toFloat(v: unknown, field = 'float'): number {
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN
  if (Number.isNaN(n)) throw fieldTypeError(field)
  return n
}

/** Coerces a bool parameter (`true`/`false` strings accepted, as ocaml-rpc does). */
export function toBool(v: unknown, field = 'bool'): boolean {
  if (typeof v === 'boolean') return v
  if (v === 'true' || v === '1' || v === 1) return true
  if (v === 'false' || v === '0' || v === 0) return false
  throw fieldTypeError(field)
}

export function toStr(v: unknown, field = 'string'): string {
  if (typeof v === 'string') return v
  if (typeof v === 'number' || typeof v === 'boolean') return String(v)
  throw fieldTypeError(field)
}

export function toMap(v: unknown, field = 'map'): Record<string, string> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw fieldTypeError(field)
  const out: Record<string, string> = {}
  for (const [k, x] of Object.entries(v)) out[k] = typeof x === 'string' ? x : String(x)
  return out
}

/** The record argument of a `<class>.create` (a struct), its fields unchecked. */
export function toRecordArg(v: unknown, field = 'args'): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw fieldTypeError(field)
  return v as Record<string, unknown>
}

export function toList(v: unknown, field = 'set'): unknown[] {
  if (!Array.isArray(v)) throw fieldTypeError(field)
  return v
}

function fieldTypeError(field: string): XapiFailure {
  return new XapiFailure('FIELD_TYPE_ERROR', [field])
}
