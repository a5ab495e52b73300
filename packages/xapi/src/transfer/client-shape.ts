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
}
