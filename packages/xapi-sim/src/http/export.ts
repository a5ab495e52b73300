import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { createXvaWriter } from '@xapi-ops/xapi-formats'
import type { XvaCompression } from '@xapi-ops/xapi-formats'
import type { SimContext } from '../context.js'
import { applyTransferFaults, TransferDropped } from '../transfer-faults.js'
import { collectVmExport } from './export-objects.js'
import { transferFaultsOf } from './faults-link.js'
import { SERVER, describeError, send500, writeRawHead } from './request.js'
import type { HttpArgs } from './request.js'
import { progressUpdater, startTransfer } from './transfer-task.js'

/** xapi: `true`/`gzip` → gzip, `zstd` → zstd (releases that know it), anything else → none. */
function compressionOf(v: string | undefined, knowsZstd: boolean): XvaCompression {
  return v === 'true' || v === 'gzip' ? 'gzip' : v === 'zstd' && knowsZstd ? 'zstd' : 'none'
}

/** `ref`, else `uuid`, else 500 (xapi: no VM given). */
function resolveVm(ctx: SimContext, args: HttpArgs): string {
  const ref = args.param('ref')
  if (ref !== undefined) {
    ctx.db.require('VM', ref)
    return ref
  }
  const uuid = args.param('uuid')
  if (uuid === undefined) throw new ctx.XapiFailure('INTERNAL_ERROR', ['missing ref or uuid'])
  const byUuid = ctx.db.refByUuid(uuid)
  if (byUuid === undefined || ctx.db.classOf(byUuid) !== 'VM')
    throw new ctx.XapiFailure('UUID_INVALID', ['VM', uuid])
  return byUuid
}

/** The SRs of the disks an export streams. */
function exportSrs(ctx: SimContext, vm: string, preserve: boolean): string[] {
  const exp = collectVmExport(ctx, vm, { preservePowerState: preserve })
  return [...new Set(exp.disks.map((d) => ctx.db.get(d.vdi)!.SR as string))]
}

/** Sends raw bytes with backpressure. */
async function write(socket: Socket, chunk: Buffer): Promise<void> {
  if (socket.destroyed) throw new Error('connection closed by the client')
  if (!socket.write(chunk)) {
    await new Promise<void>((resolve, reject) => {
      const done = (e?: Error) => {
        socket.off('drain', done)
        socket.off('close', closed)
        if (e) reject(e)
        else resolve()
      }
      const closed = () => done(new Error('connection closed by the client'))
      socket.on('drain', done)
      socket.on('close', closed)
    })
  }
}

/**
 * `GET /export`: a full XVA of a Halted or Suspended VM, close-delimited, with xapi's
 * `HTTP/1.0 200 OK` head. Errors before the head are `500` + failed task; after it, only the task.
 */
export async function handleExport(
  ctx: SimContext,
  req: IncomingMessage,
  res: ServerResponse,
  args: HttpArgs
): Promise<void> {
  const start = startTransfer(ctx, req, res, args, {
    realm: 'VM.export',
    label: 'Export of VM',
    kind: 'export',
    srs: () => exportSrs(ctx, resolveVm(ctx, args), args.param('preserve_power_state') === 'true'),
  })
  if (!start) return
  const { taskRef } = start
  let streaming = false
  try {
    const vmRef = resolveVm(ctx, args)
    const preserve = args.param('preserve_power_state') === 'true'
    const compression = compressionOf(
      args.param('use_compression'),
      !transferFaultsOf(ctx.faults).ignoresZstd
    )
    await ctx.vm.withOperation(vmRef, 'export', taskRef, async () => {
      const exp = collectVmExport(ctx, vmRef, { preservePowerState: preserve })
      const plan = transferFaultsOf(ctx.faults).plan('export')
      const task = ctx.tasks.handle(taskRef)
      const progress = progressUpdater(ctx, taskRef)
      const socket = req.socket
      writeRawHead(socket, 'HTTP/1.0 200 OK', [
        'Connection: close',
        'Cache-Control: no-cache, no-store',
        `task-id: ${taskRef}`,
        `Server: ${SERVER}`,
        'content-type: application/octet-stream',
        'Content-Disposition: attachment; filename="export.xva"',
      ])
      streaming = true
      ctx.tasks.setCancellable(taskRef, true)
      const abort = new AbortController()
      // cancelled (or closing): xapi drops the connection, even one stuck on a client not reading
      const stop = () => {
        abort.abort()
        socket.destroy()
      }
      task.signal.addEventListener('abort', stop)
      ctx.closing.addEventListener('abort', stop)
      socket.once('close', stop)
      let fraction = 0
      const xva = createXvaWriter({
        objects: exp.objects,
        disks: exp.disks.map((d) => ({
          vdi: d.vdi,
          readBlock: (i) => d.content.block(i),
          readBlockPieces: (i) => d.content.blockPieces(i),
        })),
        compression,
        corruptChecksum: plan.corrupt,
        onProgress(done, total) {
          task.checkCancelled()
          fraction = total > 0 ? done / total : 1
          progress(fraction)
        },
        signal: abort.signal,
      })
      try {
        const pieces = applyTransferFaults(plan, xva, {
          signal: abort.signal,
          onStallTick: () => progress((fraction = Math.min(0.99, fraction + 0.001))),
        })
        for await (const piece of pieces) await write(socket, piece)
        await new Promise<void>((resolve) => socket.end(resolve))
        ctx.tasks.completeRaw(taskRef, '')
      } catch (e) {
        task.checkCancelled()
        if (e instanceof TransferDropped) {
          socket.end()
          throw new ctx.XapiFailure('INTERNAL_ERROR', [e.message])
        }
        const closed = socket.destroyed && !ctx.closing.aborted
        socket.destroy()
        if (closed) throw new ctx.XapiFailure('INTERNAL_ERROR', ['Connection closed by the client'])
        throw ctx.closing.aborted ? new ctx.XapiFailure('INTERNAL_ERROR', ['simulator closing']) : e
      } finally {
        task.signal.removeEventListener('abort', stop)
        ctx.closing.removeEventListener('abort', stop)
        socket.off('close', stop)
        xva.destroy()
      }
    })
  } catch (e) {
    start.fail(e)
    if (!streaming) send500(res, describeError(e))
    else req.socket.destroy()
  } finally {
    start.done()
  }
}

/** `GET /export_metadata`: ova.xml (and the end marker) only, with a Content-Length. */
export async function handleExportMetadata(
  ctx: SimContext,
  req: IncomingMessage,
  res: ServerResponse,
  args: HttpArgs
): Promise<void> {
  const start = startTransfer(ctx, req, res, args, {
    realm: 'VM.export_metadata',
    label: 'Export of VM metadata',
    kind: 'export',
  })
  if (!start) return
  const { taskRef } = start
  let streaming = false
  try {
    const vmRef = resolveVm(ctx, args)
    const exclude = new Set(
      (args.param('excluded_device_types') ?? '').split(',').filter((x) => x !== '')
    )
    for (const t of exclude) {
      if (!['vif', 'vbd', 'vgpu', 'vtpm'].includes(t)) {
        throw new ctx.XapiFailure('INTERNAL_ERROR', [`Unknown device type: ${t}`])
      }
    }
    const body = await ctx.vm.withOperation(vmRef, 'metadata_export', taskRef, async () => {
      const exp = collectVmExport(ctx, vmRef, {
        preservePowerState: true,
        metadata: true,
        snapshots: args.param('export_snapshots') !== 'false',
        exclude,
      })
      const parts: Buffer[] = []
      for await (const c of createXvaWriter({ objects: exp.objects })) parts.push(c as Buffer)
      return Buffer.concat(parts)
    })
    writeRawHead(req.socket, 'HTTP/1.0 200 OK', [
      `task-id: ${taskRef}`,
      `Server: ${SERVER}`,
      'content-type: application/octet-stream',
      `Content-Length: ${body.length}`,
      'Content-Disposition: attachment; filename="export.xva"',
    ])
    streaming = true
    await new Promise<void>((resolve) => req.socket.end(body, resolve))
    ctx.tasks.completeRaw(taskRef, '')
  } catch (e) {
    start.fail(e)
    if (!streaming) send500(res, describeError(e))
    else req.socket.destroy()
  } finally {
    start.done()
  }
}
