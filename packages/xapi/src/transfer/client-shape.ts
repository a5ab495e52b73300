import { isXapiError } from '../errors.js'
import type { Ref } from '@xapi-ops/xapi-formats'
import type { AgentLike } from './http-connection.js'
import type { TransferTask } from './run.js'

/** The part of `XapiClient` a transfer uses. */
export type TransferClient = {
  /** The current session (logging in first if needed). Never printed. */
  sessionRef(signal?: AbortSignal): Promise<string>
  /** Base URL of the pool master (`unix:/path` for the dom0 socket). */
  hostUrl(): URL
  /** The agent whose `createConnection` applies the client's TLS policy. */
  agentFor(url: URL): AgentLike
  /** `task.create`, with a handle to wait for, cancel and destroy the task. */
  createTask(label: string, description?: string): Promise<TransferTask>
  /**
   * An XAPI call with the session prepended. Used to end a task no xapi handler took over (the
   * request never got an answer) before destroying it: xapi only marks a pending task destroyed.
   * Without it such a task is left pending until xapi's own garbage collection.
   */
  call?(method: string, ...params: unknown[]): Promise<unknown>
  /**
   * With a pin: learns the pool members' certificates from the master (see
   * `XapiClient.trustPoolCertificates`); a transfer calls it when a redirect lands on a host
   * whose certificate does not match the pin.
   */
  trustPoolCertificates?(signal?: AbortSignal): Promise<boolean>
}

/** `onPinMismatch` for `openRequest`, when the client can learn the pool's certificates. */
export function pinRelearner(
  client: TransferClient
): ((signal: AbortSignal) => Promise<boolean>) | undefined {
  const trust = client.trustPoolCertificates
  return typeof trust === 'function' ? (signal) => trust.call(client, signal) : undefined
}

/** Ends a task nobody took over: `failure` with the error as `error_info`, or `cancelled`. */
export function unclaimedTaskEnder(client: TransferClient, task: Ref<'task'>) {
  const call = client.call
  if (typeof call !== 'function') return undefined
  return async (status: 'cancelled' | 'failure', error: unknown): Promise<void> => {
    if (status === 'failure') {
      await call.call(client, 'task.set_error_info', task, errorInfo(error)).catch(() => {})
    }
    await call.call(client, 'task.set_status', task, status)
  }
}

function errorInfo(error: unknown): string[] {
  if (isXapiError(error)) return [error.code, ...error.params]
  const e = error as { code?: unknown; message?: unknown } | null
  const code = typeof e?.code === 'string' ? e.code : 'INTERNAL_ERROR'
  return [code, typeof e?.message === 'string' ? e.message : String(error)]
}
