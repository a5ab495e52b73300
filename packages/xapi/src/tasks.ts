import type { Ref } from '@xapi-ops/xapi-formats'
import type { TaskCaller, TaskWatcher, WatchTaskOptions } from './task-watcher.js'

const CLEANUP_TIMEOUT_MS = 10_000

/** A task created with `createTask` (e.g. for an HTTP import/export). */
export type TaskHandle = {
  readonly ref: Ref<'task'>
  /**
   * Waits for the task; resolves with its decoded `result`. Aborting `signal` cancels the task.
   * The task is destroyed when the wait ends, whatever the outcome.
   */
  wait(opts?: WatchTaskOptions): Promise<unknown>
  /** Asks XAPI to cancel the task (best effort: XAPI may finish it anyway). */
  cancel(): Promise<void>
  /** Destroys the task record. Idempotent; errors are ignored. */
  destroy(): Promise<void>
  [Symbol.asyncDispose](): Promise<void>
}

export type CallAsyncOptions = WatchTaskOptions

/**
 * `Async.<method>` → wait → decoded result. On failure rejects with the task's `XapiError`
 * (with `.task`); on abort cancels the task and rejects with `signal.reason`; always destroys it.
 */
export async function callAsync<T>(
  caller: TaskCaller,
  watcher: TaskWatcher,
  method: string,
  params: unknown[],
  opts: CallAsyncOptions = {}
): Promise<T> {
  const { signal } = opts
  signal?.throwIfAborted()
  const name = method.startsWith('Async.') ? method : `Async.${method}`
  // Not aborted midway: XAPI may already have created the task, which must then be cancelled
  // and destroyed, and that needs its ref. The call itself returns at once.
  const ref = await caller.callWith<Ref<'task'>>(name, params, {})
  return (await watchOwnedTask(caller, watcher, ref, opts)) as T
}

/** Creates a caller-owned task (`task.create`) with the same cleanup rules as `callAsync`. */
export async function createTask(
  caller: TaskCaller,
  watcher: TaskWatcher,
  label: string,
  description = ''
): Promise<TaskHandle> {
  const ref = await caller.callWith<Ref<'task'>>('task.create', [label, description], {})
  let destroyed: Promise<void> | undefined
  const destroy = () => (destroyed ??= destroyTask(caller, ref))
  return {
    ref,
    wait: (opts = {}) => watchOwnedTask(caller, watcher, ref, opts, destroy),
    cancel: () => cancelTask(caller, ref),
    destroy,
    [Symbol.asyncDispose]: destroy,
  }
}

async function watchOwnedTask(
  caller: TaskCaller,
  watcher: TaskWatcher,
  ref: Ref<'task'>,
  opts: WatchTaskOptions,
  destroy: () => Promise<void> = () => destroyTask(caller, ref)
): Promise<unknown> {
  try {
    return await watcher.wait(ref, opts)
  } catch (error) {
    if (opts.signal?.aborted) await cancelTask(caller, ref)
    throw error
  } finally {
    await destroy()
  }
}

async function cancelTask(caller: TaskCaller, ref: Ref<'task'>): Promise<void> {
  try {
    await caller.callWith('task.cancel', [ref], { timeoutMs: CLEANUP_TIMEOUT_MS })
  } catch {
    // Best effort: the task may have finished or may not be cancellable.
  }
}

async function destroyTask(caller: TaskCaller, ref: Ref<'task'>): Promise<void> {
  try {
    await caller.callWith('task.destroy', [ref], { timeoutMs: CLEANUP_TIMEOUT_MS })
  } catch {
    // Best effort: XAPI garbage-collects finished tasks after 65 minutes anyway.
  }
}
