import type { Ref } from '../refs.js'
import type { AgentLike } from './http-connection.js'
import type { TransferTask } from './run.js'

/** What a transfer needs from `XapiClient`. */
export type TransferClient = {
  /** The current session (logging in first if needed). */
  sessionRef(): string | Promise<string>
  /** Base URL of the host the client talks to (the pool master). */
  hostUrl(): string | URL
  /** The agent (and TLS policy) for connections to `url`. */
  agentFor(url: URL): AgentLike | undefined
  /** `task.create`, with a handle to wait for, cancel and destroy the task. */
  createTask(label: string): Promise<TransferTask>
}

export type { Ref }
