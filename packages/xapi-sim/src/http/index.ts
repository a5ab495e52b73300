import type { IncomingMessage, ServerResponse } from 'node:http'
import type { SimContext } from '../context.js'
import { handleExport, handleExportMetadata } from './export.js'
import { handleImport } from './import.js'
import { parseArgs, send404 } from './request.js'

/**
 * HTTP actions (every request that is not an RPC path): `GET /export`, `GET /export_metadata`,
 * `PUT /import`, `PUT /import_metadata`, as xapi serves them; anything else is 404.
 */
export async function handleHttpAction(
  ctx: SimContext,
  req: IncomingMessage,
  res: ServerResponse
): Promise<void> {
  const args = parseArgs(req)
  const route = `${req.method} ${args.path}`
  switch (route) {
    case 'GET /export':
      return handleExport(ctx, req, res, args)
    case 'GET /export_metadata':
      return handleExportMetadata(ctx, req, res, args)
    case 'PUT /import':
    case 'PUT /import_metadata':
      return handleImport(ctx, req, res, args, route === 'PUT /import_metadata')
    default:
      req.resume()
      send404(res)
  }
}
