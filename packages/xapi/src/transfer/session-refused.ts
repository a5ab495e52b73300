import { XapiTransportError, isXapiError } from '../errors.js'

/**
 * xapi refused a transfer's session: `401` on the request, the task failed with
 * SESSION_AUTHENTICATION_FAILED. The session expired between the task's creation and the request
 * (idle timeout, the pool's session limit, a restarted master). Nothing was transferred: a new
 * attempt is safe, and its `task.create` logs in again (SESSION_INVALID → re-login).
 */
export function isSessionRefused(error: unknown): boolean {
  return (
    isXapiError(error, 'SESSION_AUTHENTICATION_FAILED') ||
    (error instanceof XapiTransportError && error.status === 401)
  )
}

/** `open()`, once more if xapi refused its session (see {@link isSessionRefused}). */
export async function onceMoreIfSessionRefused<T>(
  signal: AbortSignal | undefined,
  open: () => Promise<T>
): Promise<T> {
  try {
    return await open()
  } catch (error) {
    if (signal?.aborted || !isSessionRefused(error)) throw error
    return open()
  }
}
