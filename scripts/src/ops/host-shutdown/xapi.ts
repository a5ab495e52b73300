/**
 * The part of `@xapi-ops/xapi`'s `XapiClient` host-shutdown uses (structural). The client adds
 * the session argument itself.
 */
export type ShutdownXapi = {
  /** A synchronous call, e.g. `callWith('VM.get_record', [vm], { signal })`. */
  callWith<T = unknown>(
    method: string,
    params: unknown[],
    options?: { signal?: AbortSignal | undefined }
  ): Promise<T>
  /** `Async.<method>`, watched to completion; on abort the task is cancelled; always destroyed. */
  callAsync<T = unknown>(
    method: string,
    params: unknown[],
    options?: { signal?: AbortSignal | undefined }
  ): Promise<T>
}

/** A timer-driven AbortController whose reason says why (`deadline`, `clean timeout`…). */
export function abortAfter(ms: number, reason: Error): { signal: AbortSignal; clear: () => void } {
  const controller = new AbortController()
  const timer = setTimeout(() => controller.abort(reason), Math.max(0, ms))
  timer.unref?.()
  return { signal: controller.signal, clear: () => clearTimeout(timer) }
}

/** Reason of the run's abort when `--deadline` passes. */
export class DeadlineError extends Error {
  override name = 'DeadlineError'
  readonly code = 'DEADLINE'
}

/** Reason of a clean shutdown's abort after `--clean-timeout`. */
export class CleanTimeoutError extends Error {
  override name = 'CleanTimeoutError'
  readonly code = 'CLEAN_TIMEOUT'
}
