import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { createXvaVerifier, XapiError } from '@xapi-ops/xapi-formats'
import type { SimContext } from '../context.js'
import { applyTransferFaults, TransferDropped } from '../transfer-faults.js'
import { lengthBody, rawBody, takeOverConnection } from './body.js'
import { transferFaultsOf } from './faults-link.js'
import { VmImport } from './import-objects.js'
import type { ImportMode } from './import-objects.js'
import { describeError, send400, send403, send500, writeRawHead } from './request.js'
import type { HttpArgs } from './request.js'
import { progressUpdater, startTransfer } from './transfer-task.js'

function closeSoon(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer)
      socket.off('end', done)
      socket.end()
      resolve()
    }
    const timer = setTimeout(done, 100)
    if (socket.readableEnded) done()
    else socket.once('end', done)
    socket.resume()
  })
}

/** The simulator's xapi version, for IMPORT_INCOMPATIBLE_VERSION. */
const IMPORTER_VERSION = { major: 25, minor: 39 }

/** `sr_id` / `sr_uuid` (cookie or query), else the pool's default SR, else DEFAULT_SR_NOT_FOUND. */
function resolveSr(ctx: SimContext, args: HttpArgs): string {
  const id = args.param('sr_id')
  if (id !== undefined) return (ctx.db.require('SR', id), id)
  const uuid = args.param('sr_uuid')
  if (uuid !== undefined) {
    const ref = ctx.db.refByUuid(uuid)
    if (ref === undefined || ctx.db.classOf(ref) !== 'SR')
      throw new ctx.XapiFailure('UUID_INVALID', ['SR', uuid])
    return ref
  }
  const sr = ctx.defaultSr()
  if (sr === undefined) {
    const current = ctx.db.get(ctx.pool.ref)?.default_SR
    throw new ctx.XapiFailure('DEFAULT_SR_NOT_FOUND', [String(current ?? 'OpaqueRef:NULL')])
  }
  return sr
}

/**
 * `PUT /import` and `PUT /import_metadata`: `200` with `task-id` before reading the body (any
 * Transfer-Encoding → 403 IMPORT_ERROR_CANNOT_HANDLE_CHUNKED), body by Content-Length or until
 * EOF, compression sniffed, full verification, objects created and removed again on failure
 * unless `force`; the task result is the XML-RPC array of the new VM refs.
 */
export async function handleImport(
  ctx: SimContext,
  req: IncomingMessage,
  res: ServerResponse,
  args: HttpArgs,
  metadata: boolean
): Promise<void> {
  const closeDelimited =
    req.headers['content-length'] === undefined && req.headers['transfer-encoding'] === undefined
  const socket = closeDelimited ? takeOverConnection(req) : req.socket
  const start = startTransfer(ctx, req, res, args, {
    realm: metadata ? 'VM.metadata_import' : 'VM.import',
    label: metadata ? 'VM metadata import' : 'VM import',
    kind: 'import',
    srs: () => (metadata ? [] : [resolveSr(ctx, args)]),
  })
  if (!start) return
  const { taskRef } = start
  const fail = (e: unknown, send?: (res: ServerResponse) => void) => {
    start.fail(e)
    if (send) send(res)
    else send500(res, describeError(e))
    start.done()
  }
  let mode: ImportMode
  try {
    if (metadata) {
      const vdiMap = new Map<string, string>()
      for (const [k, v] of args.query) if (k.startsWith('vdi:')) vdiMap.set(k.slice(4), v)
      mode = { kind: 'metadata', vdiMap }
    } else {
      const sr = resolveSr(ctx, args)
      if (ctx.db.get(sr)!.content_type === 'iso') {
        return fail(new ctx.XapiFailure('SR_OPERATION_NOT_SUPPORTED', [sr]), send400)
      }
      mode = { kind: 'full', sr }
    }
  } catch (e) {
    return fail(e)
  }
  if (req.headers['transfer-encoding'] !== undefined) {
    return fail(new ctx.XapiFailure('IMPORT_ERROR_CANNOT_HANDLE_CHUNKED', []), send403)
  }
  writeRawHead(socket, 'HTTP/1.1 200 OK', [
    'Connection: close',
    'Cache-Control: no-cache, no-store',
    `task-id:${taskRef}`,
    'content-type: application/octet-stream',
  ])
  const force = args.flag('force')
  const dryRun = metadata && args.flag('dry_run')
  const importer = new VmImport(ctx, { mode, restore: args.flag('restore'), force, taskRef })
  const task = ctx.tasks.handle(taskRef)
  const progress = progressUpdater(ctx, taskRef)
  const abort = new AbortController()
  // cancelled (or closing): xapi drops the connection, even one stuck on a client not reading
  const stop = () => {
    abort.abort()
    socket.destroy()
  }
  task.signal.addEventListener('abort', stop)
  ctx.closing.addEventListener('abort', stop)
  ctx.tasks.setCancellable(taskRef, true)
  const plan = transferFaultsOf(ctx.faults).plan('import')
  const verifier = createXvaVerifier({
    force,
    metadataOnly: metadata,
    importerVersion: IMPORTER_VERSION,
    // A release without zstd takes a zstd stream for a tar archive, and fails on it.
    onCompression: (compression) => {
      if (compression === 'zstd' && transferFaultsOf(ctx.faults).ignoresZstd)
        throw new XapiError('IMPORT_ERROR', ['Invalid XVA file: not a tar archive'])
    },
    onHeader: (header, disks) => {
      if (!dryRun) importer.create(header, disks)
    },
    onBlockPieces: (disk, index, pieces, xxh64) => {
      task.checkCancelled()
      importer.writeBlockPieces(disk, index, pieces, xxh64)
      const p = verifier.progress
      if (p.totalDiskBytes > 0) progress(p.diskBytes / p.totalDiskBytes)
    },
    signal: abort.signal,
  })
  try {
    const body = applyTransferFaults(
      plan,
      closeDelimited ? rawBody(req, socket) : lengthBody(req),
      {
        signal: abort.signal,
      }
    )
    await pipeline(Readable.from(body), verifier, new Writable({ write: (_c, _e, cb) => cb() }))
    await verifier.result
    task.checkCancelled()
    ctx.tasks.complete(taskRef, dryRun ? [] : importer.finish())
    // xapi closes once its handler returns, which follows the last byte by the time the disks take
    // to sync; give the client that moment to see its last write drain (or to half-close) first
    await closeSoon(socket)
  } catch (e) {
    let err = e
    if (task.cancelRequested()) err = new ctx.XapiFailure('TASK_CANCELLED', [taskRef])
    else if (e instanceof TransferDropped)
      err = new ctx.XapiFailure('IMPORT_ERROR_PREMATURE_EOF', [])
    else if (ctx.closing.aborted) err = new ctx.XapiFailure('INTERNAL_ERROR', ['simulator closing'])
    if (!force) importer.cleanup()
    start.fail(err)
    socket.destroy()
  } finally {
    task.signal.removeEventListener('abort', stop)
    ctx.closing.removeEventListener('abort', stop)
    start.done()
  }
}
