import type { CallCtx } from '../rpc/registry.js'

/** Simulated durations (ms of simulated time, before timeScale). */
export const DURATIONS = {
  start: 3000,
  resume: 2000,
  cleanShutdown: 2000,
  hardShutdown: 500,
  reboot: 3000,
  suspend: 3000,
  pause: 200,
  snapshot: 1000,
  clone: 1000,
  destroy: 200,
  /** Default time a `slow` guest takes to shut down cleanly. */
  slowGuestS: 30,
  /** Default time xapi waits for an `ignore` guest before VM_FAILED_SHUTDOWN_ACKNOWLEDGMENT. */
  ignoreGuestS: 60,
  /** Memory copied per simulated second by live migration. */
  migrateMemoryBytesPerS: 1024 * 2 ** 20,
  /** Disk data copied per simulated second by storage migration. */
  migrateDiskBytesPerS: 100 * 2 ** 20,
} as const

/**
 * Spends `ms` of simulated time in up to 10 steps, moving the task's progress from `from` to
 * `to`. With `cancellable`, each step is a cancellable point (TASK_CANCELLED) and the task shows
 * `allowed_operations = [cancel]` meanwhile.
 */
export async function work(
  ctx: CallCtx,
  ms: number,
  opts: { from?: number; to?: number; cancellable?: boolean } = {}
): Promise<void> {
  const from = opts.from ?? 0
  const to = opts.to ?? 1
  const steps = ms * ctx.state.timeScale >= 50 ? 10 : 1
  if (opts.cancellable) ctx.task.setCancellable(true)
  try {
    for (let i = 1; i <= steps; i++) {
      if (opts.cancellable) ctx.task.checkCancelled()
      await ctx.state.sleep(ms / steps, opts.cancellable ? ctx.task.signal : undefined)
      if (opts.cancellable) ctx.task.checkCancelled()
      if (i < steps || to < 1) ctx.task.setProgress(from + ((to - from) * i) / steps)
    }
  } finally {
    if (opts.cancellable) ctx.task.setCancellable(false)
  }
}
