import { basename, join } from 'node:path'
import { XAPI_CLIENT_ERROR_CODES, type Ref, type XapiClient } from '@xapi-ops/xapi'
import { describeError, errorCode } from '../../lib/errors.js'
import { failureCode, type ItemResult } from '../../lib/results.js'
import { removeQuietly } from '../transfer/fs-utils.js'
import type { ProgressDisplay, TransferHandle } from '../transfer/progress-display.js'
import { sleep } from '../../lib/sleep.js'
import { backoffMs, isRetriable } from '../transfer/retry.js'
import type { VmExportEvent } from './events.js'
import { checkFreeSpace, type SpaceBudget } from './free-space.js'
import type { ManifestEntry, ManifestStore } from './manifest.js'
import { exportPaths, type Compression, type CompressOn } from './naming.js'
import type { PendingStore } from './pending.js'
import type { ExportItem } from './plan.js'
import { checkExisting } from './resume.js'
import {
  destroySnapshot,
  powerStateOf,
  restartVm,
  stopVm,
  takeSnapshot,
  type ExportSnapshot,
} from './vm-power.js'
import { writeExport, type WrittenExport } from './write-export.js'

/** What every export job of a run shares. */
export type ExportJobContext = {
  readonly client: XapiClient
  readonly dir: string
  readonly compression: Compression
  readonly compressOn: CompressOn
  readonly metadataOnly: boolean
  /** Attempts after the first one, after transport and verification failures. */
  readonly retries: number
  readonly retryBaseMs: number
  readonly overwrite: boolean
  readonly cleanTimeoutMs: number
  readonly pool: ManifestEntry['pool']
  readonly manifest: ManifestStore
  /** Where snapshots taken and VMs stopped are recorded until undone (kill -9 safety). */
  readonly pending: PendingStore
  readonly budget: SpaceBudget
  readonly display: ProgressDisplay
  readonly emit: (event: VmExportEvent) => void
  readonly warn: (message: string) => void
}

/**
 * Exports one VM: resume check, snapshot or shutdown as planned, the transfer with retries, the
 * manifest update, then — whatever happened — the snapshot destroyed or the VM started again.
 * Never throws: the outcome is the returned result.
 */
export async function runExportJob(
  item: ExportItem,
  ctx: ExportJobContext,
  signal: AbortSignal
): Promise<ItemResult> {
  const id = { vm: item.uuid, name: item.name }
  const base = { ...id, action: item.action, file: join(ctx.dir, item.file) }
  if (item.action === 'skip') {
    return { ...base, status: 'skipped', error: `${item.powerState} (--running skip)` }
  }
  const pendingId = { vm: item.uuid, name: item.name }
  let snapshot: ExportSnapshot | undefined
  let stopped = false
  let result: ItemResult
  try {
    signal.throwIfAborted()
    // A `.part` left by a killed run is never a result: it goes, whatever happens next.
    await removeQuietly(exportPaths(ctx.dir, item.file).part)
    if (!ctx.overwrite) {
      const existing = await checkExisting(ctx.manifest, item, { ...ctx, signal })
      if (existing.state === 'verified') {
        const { bytes, sha256 } = existing.entry
        ctx.emit({ kind: 'resumed', ...id, file: item.file, bytes })
        return {
          ...base,
          action: 'none',
          status: 'skipped',
          bytes,
          sha256,
          error: 'already exported',
        }
      }
      if (existing.state === 'invalid')
        ctx.warn(`${item.name}: ${existing.reason}: exporting again`)
    }
    let target = item.ref
    await ctx.pending.set({
      ...pendingId,
      action: item.action,
      part: basename(exportPaths(ctx.dir, item.file).part),
      ...(item.action === 'offline' && {
        host: item.record.resident_on,
        paused: item.powerState === 'Paused',
      }),
    })
    if (item.action === 'snapshot') {
      snapshot = await takeSnapshot(ctx.client, item.ref, item.name, signal)
      await ctx.pending.set({ ...pendingId, action: 'snapshot', snapshot })
      ctx.emit({ kind: 'snapshot', ...id, snapshot: snapshot.uuid })
      target = snapshot.ref
    } else if (item.action === 'offline') {
      // Set before the call: an interrupted shutdown may still complete on the host.
      stopped = true
      const how = await stopVm(ctx.client, item.ref, { cleanTimeoutMs: ctx.cleanTimeoutMs, signal })
      ctx.emit({ kind: 'vm-stopped', ...id, action: how })
    }
    const started = Date.now()
    const { compressedOn, ...written } = await exportWithRetries(
      item,
      target,
      snapshot ? 'snapshot' : 'vm',
      ctx,
      signal
    )
    const durationMs = Date.now() - started
    await ctx.manifest.put({
      uuid: item.uuid,
      name: item.name,
      file: item.file,
      bytes: written.bytes,
      sha256: written.sha256,
      compression: ctx.compression,
      ...(ctx.compression !== 'none' && { compressedOn }),
      metadataOnly: ctx.metadataOnly,
      time: new Date().toISOString(),
      durationMs,
      source: snapshot ? 'snapshot' : 'vm',
      pool: ctx.pool,
      record: item.record,
    })
    ctx.emit({ kind: 'export-done', ...id, file: item.file, ...written, durationMs })
    result = { ...base, status: 'ok', ...written, durationMs }
  } catch (error) {
    const message = signal.aborted
      ? `interrupted (${describeError(signal.reason)})`
      : describeError(error)
    ctx.emit({ kind: 'export-failed', ...id, error: message })
    result = { ...base, status: 'failed', error: message, ...failureCode(error, signal.aborted) }
  }
  const cleanupErrors: string[] = []
  if (snapshot) {
    try {
      await destroySnapshot(ctx.client, snapshot.ref)
      ctx.emit({ kind: 'snapshot-destroyed', ...id, snapshot: snapshot.uuid })
    } catch (error) {
      cleanupErrors.push(`snapshot ${snapshot.uuid} left behind: ${describeError(error)}`)
    }
  }
  if (stopped) {
    try {
      // An interrupted shutdown may have left the VM running: then there is nothing to start.
      if ((await powerStateOf(ctx.client, item.ref)) === 'Halted') {
        await restartVm(ctx.client, item.ref, {
          host: item.record.resident_on,
          paused: item.powerState === 'Paused',
        })
        ctx.emit({ kind: 'vm-restarted', ...id })
      }
    } catch (error) {
      cleanupErrors.push(`the VM could not be started again: ${describeError(error)}`)
    }
  }
  if (cleanupErrors.length === 0) {
    // Undone (or nothing was changed): a later run has nothing to undo for this VM.
    await ctx.pending.delete(item.uuid).catch((error: unknown) => {
      ctx.warn(`${item.name}: ${ctx.pending.file}: ${describeError(error)}`)
    })
  } else {
    for (const e of cleanupErrors) ctx.warn(`${item.name}: ${e}`)
    const before = result.status === 'failed' && result.error ? `${result.error}; ` : ''
    result = { ...result, status: 'failed', error: `${before}${cleanupErrors.join('; ')}` }
  }
  return result
}

async function exportWithRetries(
  item: ExportItem,
  target: Ref<'VM'>,
  source: 'vm' | 'snapshot',
  ctx: ExportJobContext,
  signal: AbortSignal
): Promise<WrittenExport & { compressedOn: CompressOn }> {
  const handle = ctx.display.start(item.uuid, item.name)
  try {
    return await attempts(item, target, source, ctx, signal, handle)
  } finally {
    handle.finish()
  }
}

async function attempts(
  item: ExportItem,
  target: Ref<'VM'>,
  source: 'vm' | 'snapshot',
  ctx: ExportJobContext,
  signal: AbortSignal,
  handle: TransferHandle
): Promise<WrittenExport & { compressedOn: CompressOn }> {
  const id = { vm: item.uuid, name: item.name }
  let compressOn = ctx.compressOn
  for (let attempt = 1; ; attempt++) {
    signal.throwIfAborted()
    ctx.budget.claim(item.uuid, item.estimateBytes)
    try {
      await checkFreeSpace(ctx.dir, item.estimateBytes, ctx.budget, item.uuid)
      ctx.emit({ kind: 'export-start', ...id, file: item.file, attempt, source })
      const written = await writeExport(ctx.client, {
        dir: ctx.dir,
        file: item.file,
        vm: target,
        compression: ctx.compression,
        compressOn,
        metadataOnly: ctx.metadataOnly,
        signal,
        onProgress: (bytes, fraction) => {
          handle.update(bytes, fraction)
          ctx.budget.written(item.uuid, bytes)
        },
      })
      return { ...written, compressedOn: compressOn }
    } catch (error) {
      signal.throwIfAborted()
      if (zstdUnknownToHost(error, ctx.compression, compressOn)) {
        // An xapi without zstd sent the archive raw: compress it here instead, at once.
        compressOn = 'client'
        ctx.warn(`${item.name}: the host does not compress with zstd; compressing on this machine`)
        attempt--
        continue
      }
      if (!isRetriable(error) || attempt > ctx.retries) throw error
      const delayMs = backoffMs(attempt, ctx.retryBaseMs)
      ctx.emit({ kind: 'export-retry', ...id, attempt, delayMs, error: describeError(error) })
      await sleep(delayMs, signal)
    } finally {
      ctx.budget.release(item.uuid)
    }
  }
}

function zstdUnknownToHost(error: unknown, compression: Compression, on: CompressOn): boolean {
  return (
    errorCode(error) === XAPI_CLIENT_ERROR_CODES.COMPRESSION_MISMATCH &&
    compression === 'zstd' &&
    on === 'host'
  )
}
