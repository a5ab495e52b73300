import { XapiFailure } from '../errors.js'
import { encodeXmlRpcValue } from '../wire/xml-rpc.js'
import { newRef, type PoolDb } from './db.js'
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
  /**
   * TaskHelper.set_cancellable / set_not_cancellable: `allowed_operations` is `[cancel]` only
   * while the worker is at cancellable work (xapi: while a xenopsd/storage task is registered).
   */
  setCancellable(on: boolean): void
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
    setCancellable(on: boolean) {
      const t = db.get(ref)
      const ops = on ? ['cancel'] : []
      if (t && t.status === 'pending' && (t.allowed_operations as string[]).length !== ops.length)
        db.update(ref, { allowed_operations: ops })
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
    setCancellable() {},
  }
}

export function isCancelRequested(db: PoolDb, ref: string): boolean {
  const t = db.get(ref)
  if (!t) return false
  return Object.values(t.current_operations as Record<string, string>).includes('cancel')
}

/**
 * `task.cancel` (Xapi_task.cancel): sets `current_operations` to `{<the cancel call's task>:
 * cancel}` whatever the task's status; a pending task's worker ends it as `cancelled` at its
 * next cancellable point.
 */
export function requestCancel(db: PoolDb, ref: string, byTask: string = newRef()): void {
  const t = db.require('task', ref)
  db.update(ref, { current_operations: { [byTask]: 'cancel' } })
  if (t.status === 'pending') controllers.get(ref)?.abort()
}

/**
 * `task.destroy` (Xapi_task.destroy): a finished task goes at once; a pending one is only marked
 * (`current_operations` gets `task: destroy`) and goes when it finishes.
 */
export function destroyTask(db: PoolDb, ref: string): void {
  const t = db.require('task', ref)
  if (t.status === 'pending') {
    db.update(ref, { current_operations: { ...t.current_operations, task: 'destroy' } })
    return
  }
  db.destroy(ref)
  controllers.delete(ref)
}

/** Destroys a finished task that `task.destroy` marked while it was pending. */
function destroyIfMarked(db: PoolDb, ref: string): void {
  const t = db.get(ref)
  if (t && Object.values(t.current_operations as Record<string, string>).includes('destroy'))
    db.destroy(ref)
}

/**
 * Marks a pending task successful (TaskHelper.complete); `value` becomes the XML-RPC fragment in
 * `result`. `current_operations` is left as it is, as xapi does.
 */
export function completeTask(db: PoolDb, ref: string, value: unknown): void {
  const t = db.get(ref)
  controllers.delete(ref)
  if (!t || t.status !== 'pending') return
  db.update(ref, {
    allowed_operations: [],
    finished: new Date(),
    progress: 1,
    result: encodeXmlRpcValue(value ?? ''),
    status: 'success',
  })
  destroyIfMarked(db, ref)
}

/**
 * Ends a pending task on an error: TASK_CANCELLED → `cancelled` (TaskHelper.cancel: progress 1,
 * `error_info` left empty), anything else → `failure` with `error_info = description`
 * (TaskHelper.failed, progress 1 too).
 */
export function failTask(db: PoolDb, ref: string, description: readonly string[]): void {
  const t = db.get(ref)
  controllers.delete(ref)
  if (!t || t.status !== 'pending') return
  const cancelled = description[0] === 'TASK_CANCELLED'
  db.update(ref, {
    progress: 1,
    ...(cancelled ? {} : { error_info: [...description] }),
    finished: new Date(),
    allowed_operations: [],
    status: cancelled ? 'cancelled' : 'failure',
  })
  destroyIfMarked(db, ref)
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
