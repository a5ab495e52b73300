import { XapiFailure } from '../errors.js'
import { encodeXmlRpcValue } from '../wire/xml-rpc.js'
import type { PoolDb } from './db.js'
import { newTask } from './records.js'

/** xapi's `completed_task_timeout`: finished tasks are destroyed after 65 min (scaled). */
export const COMPLETED_TASK_TIMEOUT_MS = 3900_000
/** xapi's `pending_task_timeout`: pending tasks are destroyed after 24 h (scaled). */
export const PENDING_TASK_TIMEOUT_MS = 86_400_000

/**
 * A handle on the task an operation runs under. Sync calls get one too (xapi runs every call in a
 * task), backed by no DB object.
 */
export type TaskHandle = {
  /** The task ref (`OpaqueRef:…`); for sync calls, a ref that is in no table. */
  readonly ref: string
  /** Whether a DB task object backs this handle (Async.* calls, task.create). */
  readonly visible: boolean
  /** Sets `progress` (0..1). */
  setProgress(p: number): void
  /** Whether `task.cancel` was called on it. */
  cancelRequested(): boolean
  /** A cancellable point: throws `TASK_CANCELLED [task]` if cancellation was requested. */
  checkCancelled(): void
  /** Aborted when cancellation is requested (lets sleeps end early). */
  readonly signal: AbortSignal
}

const controllers = new Map<string, AbortController>()

/** Creates a pending task object. */
export function createTask(
  db: PoolDb,
  opts: {
    name_label: string
    name_description?: string
    hostRef: string
    cancellable?: boolean
    sessionRef?: string
  }
): string {
  const ref = db.create(
    'task',
    newTask({
      name_label: opts.name_label,
      name_description: opts.name_description ?? '',
      resident_on: opts.hostRef,
      allowed_operations: opts.cancellable === false ? [] : ['cancel'],
      other_config: {},
    })
  )
  controllers.set(ref, new AbortController())
  return ref
}

/** A handle on the DB task `ref`. */
export function taskHandle(db: PoolDb, ref: string): TaskHandle {
  let ctrl = controllers.get(ref)
  if (!ctrl) controllers.set(ref, (ctrl = new AbortController()))
  const signal = ctrl.signal
  return {
    ref,
    visible: true,
    signal,
    setProgress(p: number) {
      const t = db.get(ref)
      if (t && t.status === 'pending') db.update(ref, { progress: Math.max(0, Math.min(1, p)) })
    },
    cancelRequested: () => isCancelRequested(db, ref),
    checkCancelled() {
      if (isCancelRequested(db, ref)) throw new XapiFailure('TASK_CANCELLED', [ref])
    },
  }
}

/** A handle for a sync call: no DB object, never cancelled. */
export function syncHandle(ref: string): TaskHandle {
  return {
    ref,
    visible: false,
    signal: new AbortController().signal,
    setProgress() {},
    cancelRequested: () => false,
    checkCancelled() {},
  }
}

export function isCancelRequested(db: PoolDb, ref: string): boolean {
  const t = db.get(ref)
  if (!t) return false
  return Object.values(t.current_operations as Record<string, string>).includes('cancel')
}

/**
 * `task.cancel`: records the request in `current_operations` (as xapi does); the worker ends the
 * task as `cancelled` at its next cancellable point. Finished tasks are left alone.
 */
export function requestCancel(db: PoolDb, ref: string): void {
  const t = db.require('task', ref)
  if (t.status !== 'pending') return
  db.update(ref, { current_operations: { ...t.current_operations, [ref]: 'cancel' } })
  controllers.get(ref)?.abort()
}

/** Marks a task successful; `value` becomes the XML-RPC fragment in `result`. */
export function completeTask(db: PoolDb, ref: string, value: unknown): void {
  if (!db.get(ref)) return
  db.update(ref, {
    allowed_operations: [],
    current_operations: {},
    finished: new Date(),
    progress: 1,
    result: encodeXmlRpcValue(value ?? ''),
    status: 'success',
  })
  controllers.delete(ref)
}

/** Marks a task failed (or cancelled, for TASK_CANCELLED) with `error_info = description`. */
export function failTask(db: PoolDb, ref: string, description: readonly string[]): void {
  if (!db.get(ref)) return
  db.update(ref, {
    allowed_operations: [],
    current_operations: {},
    finished: new Date(),
    error_info: [...description],
    status: description[0] === 'TASK_CANCELLED' ? 'cancelled' : 'failure',
  })
  controllers.delete(ref)
}

/** Destroys finished tasks older than the (scaled) timeouts; returns how many went. */
export function gcTasks(db: PoolDb, timeScale: number, now = Date.now()): number {
  let n = 0
  for (const [ref, t] of db.filter('task')) {
    const pending = t.status === 'pending'
    const since = pending ? (t.created as Date).getTime() : (t.finished as Date).getTime()
    const limit = (pending ? PENDING_TASK_TIMEOUT_MS : COMPLETED_TASK_TIMEOUT_MS) * timeScale
    if (now - since > limit) {
      db.destroy(ref)
      controllers.delete(ref)
      n++
    }
  }
  return n
}

/** Forgets the abort controller of a destroyed task. */
export function forgetTask(ref: string): void {
  controllers.delete(ref)
}
