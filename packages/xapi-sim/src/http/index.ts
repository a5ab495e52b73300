import type { IncomingMessage, ServerResponse } from 'node:http'
import type { SimContext } from '../context.js'

/**
 * HTTP actions (`/export`, `/export_metadata`, `/import`, `/import_metadata`, ...): every request
 * that is not an RPC path. Stub: answers 404 until the transfer handlers are written.
 */
export async function handleHttpAction(
  _ctx: SimContext,
  req: IncomingMessage,
  res: ServerResponse
): Promise<void> {
  req.resume()
  res.writeHead(404, { 'content-type': 'text/plain' })
  res.end('not found\n')
}
