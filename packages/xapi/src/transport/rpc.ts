import type http from 'node:http'
import type https from 'node:https'
import { decodeJsonRpcResponse, isJsonRpcUnsupported, postJsonRpc } from './json-rpc.js'
import { XapiTransportError } from '../errors.js'
import { withThumbprint, xmlRpcCall } from './xml-rpc.js'

function isHangUp(error: unknown): boolean {
  if (!(error instanceof XapiTransportError) || error.status !== undefined) return false
  const code = (error.cause as NodeJS.ErrnoException | undefined)?.code
  return code === 'ECONNRESET' || code === 'EPIPE'
}

export type TransportMode = 'auto' | 'json-rpc' | 'xml-rpc'

/**
 * Sends calls over the configured protocol. In `auto` mode the first call goes to `/jsonrpc`;
 * an error status or a non-JSON content type there (older hosts answer `text/xml`) switches the
 * client to XML-RPC for good and the call is resent (the server did not run it). So does a
 * connection closed without an answer, if XML-RPC then works.
 */
export class RpcChannel {
  #mode: TransportMode
  readonly #agentFor: (url: URL) => http.Agent | https.Agent

  readonly #headers: Readonly<Record<string, string>> | undefined

  constructor(
    mode: TransportMode,
    agentFor: (url: URL) => http.Agent | https.Agent,
    headers?: Readonly<Record<string, string>>
  ) {
    this.#mode = mode
    this.#agentFor = agentFor
    this.#headers = headers
  }

  /** The protocol in use, or `auto` before the first answer. */
  get protocol(): TransportMode {
    return this.#mode
  }

  async call(
    base: URL,
    method: string,
    params: readonly unknown[],
    signal: AbortSignal
  ): Promise<unknown> {
    const opts = {
      agentFor: this.#agentFor,
      signal,
      ...(this.#headers && { headers: this.#headers }),
    }
    if (this.#mode === 'xml-rpc') return xmlRpcCall(base, method, params, opts)
    let res
    try {
      res = await postJsonRpc(base, method, params, opts)
    } catch (error) {
      // Some XML-RPC-only servers hang up on a JSON body instead of answering an error.
      if (this.#mode !== 'auto' || !isHangUp(error) || signal.aborted) throw error
      const value = await xmlRpcCall(base, method, params, opts)
      this.#mode = 'xml-rpc'
      return value
    }
    if (this.#mode === 'auto') {
      if (isJsonRpcUnsupported(res)) {
        this.#mode = 'xml-rpc'
        return xmlRpcCall(base, method, params, opts)
      }
      this.#mode = 'json-rpc'
    }
    return withThumbprint(res, () => decodeJsonRpcResponse(res, method))
  }
}
