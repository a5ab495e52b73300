import { open } from 'node:fs/promises'
import type { Readable } from 'node:stream'
import { importVm, isXapiError, type Ref, type XapiClient } from '@xapi-ops/xapi'
import { DecompressStream } from 'zstd-napi'
import { describeError } from '../../lib/errors.js'
import { sleep } from '../../lib/sleep.js'
import { failureCode, type ItemResult } from '../../lib/results.js'
import { destroyVmWithDisks } from '../transfer/destroy-vm.js'
import type { ProgressDisplay } from '../transfer/progress-display.js'
import { backoffMs, isRetriable, XvaVerificationError } from '../transfer/retry.js'
import { verifyFile } from '../transfer/verify-file.js'
import type { VmImportEvent } from './events.js'
import { fileLabel, fileSize } from './files.js'
import { checkRestore } from './restore-check.js'
import type { TargetSr } from './sr.js'

/** What every import job of a run shares. */
export type ImportJobContext = {
  readonly client: XapiClient
  readonly sr: TargetSr
  readonly restore: boolean
  readonly force: boolean
  readonly start: boolean
  /** Verify the archive locally before sending it. */
  readonly verify: boolean
  /** New attempts after a broken upload (`--retries`), with backoff from `retryBaseMs`. */
  readonly retries: number
  readonly retryBaseMs: number
  readonly display: ProgressDisplay
  readonly emit: (event: VmImportEvent) => void
  readonly warn: (message: string) => void
  /** The tasks of failed imports: the networks they made are removed once the batch is over. */
  readonly failedImportTasks: Set<string>
}

type TransferClient = Parameters<typeof importVm>[0]

/**
 * Imports one file: local verification (and, with `--restore`, {@link checkRestore}),
 * `PUT /import` with its Content-Length, then `--start`. When the import fails, what it created
 * (VMs found by `other_config:import_task`, with their disks) is destroyed; once xapi reports it
 * done, nothing is destroyed any more (with `--restore`, the VM it replaced is gone). Never
 * throws: the outcome is the returned result.
 */
export async function runImportJob(
  file: string,
  ctx: ImportJobContext,
  signal: AbortSignal
): Promise<ItemResult> {
  const size = await fileSize(file).catch((error: unknown) => error as Error)
  if (size instanceof Error) return failed(ctx, file, size, false)
  // The import tasks created: what a failed import made is marked with one of them.
  const tasks: string[] = []
  let imported: Imported
  try {
    imported = await importFile(file, size, tasks, ctx, signal)
  } catch (error) {
    const leftovers = await destroyLeftovers(ctx, file, tasks, [])
    return failed(ctx, file, error, signal.aborted, leftovers)
  }
  return finish(file, size, imported, ctx, signal)
}

/** What a finished import made. */
type Imported = { readonly vms: Ref<'VM'>[]; readonly name?: string; readonly durationMs: number }

/** Verification, then the upload (with its retries); the tasks it creates are added to `tasks`. */
async function importFile(
  file: string,
  size: number,
  tasks: string[],
  ctx: ImportJobContext,
  signal: AbortSignal
): Promise<Imported> {
  const label = fileLabel(file)
  signal.throwIfAborted()
  let name: string | undefined
  // What the host is sent: the file as it is, or (see below) its tar decompressed here.
  let body: Body = { zstd: file.endsWith('.zst'), decompress: false, length: size }
  if (ctx.verify) {
    const { summary } = await verifyFile(file, { force: ctx.force, signal }).catch(
      (error: unknown) => explainMetadataOnly(file, size, error, signal)
    )
    body = {
      zstd: summary.compression === 'zstd',
      decompress: false,
      length: size,
      tarBytes: summary.tarBytes,
    }
    const names = summary.vms.map((vm) => String(vm.snapshot.name_label ?? vm.id))
    name = names[0]
    ctx.emit({
      kind: 'verified',
      file,
      bytes: summary.bytes,
      compression: summary.compression,
      vms: names,
      disks: summary.disks.length,
    })
    if (summary.checksumFailures.length > 0) {
      ctx.warn(
        `${file}: ${summary.checksumFailures.length} block checksum mismatch(es) ignored (--force): ${summary.checksumFailures.slice(0, 3).join('; ')}`
      )
    }
    if (ctx.restore) await checkRestore(ctx.client, summary, signal)
  }
  ctx.emit({ kind: 'import-start', file, bytes: size })
  const started = Date.now()
  for (let attempt = 1; ; attempt++) {
    try {
      const vms = await importOnce(file, label, body, tasks, ctx, signal)
      return { vms, durationMs: Date.now() - started, ...(name === undefined ? {} : { name }) }
    } catch (error) {
      if (!signal.aborted && body.zstd && !body.decompress && readsNoZstd(error)) {
        // A zstd archive the host cannot read: an xapi without zstd. Send the tar.
        if (await destroyLeftovers(ctx, file, tasks, [])) throw error
        tasks.length = 0
        body = { ...body, decompress: true, length: body.tarBytes }
        ctx.warn(`${file}: the host does not read zstd archives; sending it decompressed`)
        attempt--
        continue
      }
      if (signal.aborted || attempt > ctx.retries || !isRetriable(error)) throw error
      // What this attempt left goes before the next one; if it cannot, stop here.
      if (await destroyLeftovers(ctx, file, tasks, [])) throw error
      tasks.length = 0
      const delayMs = backoffMs(attempt, ctx.retryBaseMs)
      ctx.emit({ kind: 'import-retry', file, attempt, delayMs, error: describeError(error) })
      await sleep(delayMs, signal)
    }
  }
}

/**
 * After a successful import: the new VM's uuid and `--start`. The VM is kept whatever happens
 * here (it is complete); its record is read without the run's signal, so that an interrupt
 * still reports what was imported.
 */
async function finish(
  file: string,
  size: number,
  imported: Imported,
  ctx: ImportJobContext,
  signal: AbortSignal
): Promise<ItemResult> {
  const { vms, durationMs } = imported
  const first = vms[0]
  if (first === undefined) {
    const error = new Error(
      'the import created no VM (with --restore --force, xapi skips a VM that is not halted)'
    )
    return failed(ctx, file, error, false)
  }
  let newVm: string
  let name: string
  let uuids: string[]
  try {
    const records = await retryLookup(() =>
      Promise.all(
        vms.map((ref) => ctx.client.getRecord('VM', ref, { signal: AbortSignal.timeout(60_000) }))
      )
    )
    newVm = records[0]!.uuid
    name = records[0]!.name_label || imported.name || ''
    uuids = records.map((r) => r.uuid)
  } catch (error) {
    const message = `imported as ${vms.join(', ')}, but the new VM's record could not be read: ${describeError(error)}`
    ctx.emit({ kind: 'import-failed', file, error: message })
    return { file, status: 'failed', action: 'import', error: message, ...failureCode(error) }
  }
  ctx.emit({ kind: 'import-done', file, newVm, name, durationMs })
  const extra = vms.length > 1 ? { newVms: uuids } : {}
  const result = { file, vm: newVm, name, newVm, bytes: size, durationMs, ...extra }
  if (!ctx.start) return { ...result, status: 'ok', action: 'import' }
  try {
    await ctx.client.callAsync('VM.start', [first, false, false], { signal })
    ctx.emit({ kind: 'vm-started', file, newVm })
    return { ...result, status: 'ok', action: 'import_start' }
  } catch (error) {
    const why = signal.aborted ? 'interrupted' : describeError(error)
    return {
      ...result,
      status: 'failed',
      action: 'import',
      error: `imported, but VM.start failed: ${why}`,
      ...failureCode(error, signal.aborted),
    }
  }
}

/** The result of a file that was not imported. */
function failed(
  ctx: ImportJobContext,
  file: string,
  error: unknown,
  interrupted: boolean,
  leftovers?: string
): ItemResult {
  const message = interrupted ? `interrupted (${describeError(error)})` : describeError(error)
  ctx.emit({ kind: 'import-failed', file, error: message })
  return {
    file,
    status: 'failed',
    action: 'none',
    error: leftovers ? `${message}; ${leftovers}` : message,
    ...failureCode(error, interrupted),
  }
}

/** A few attempts, 1 s apart: the lookups after an import that has already succeeded. */
async function retryLookup<T>(fn: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn()
    } catch (error) {
      if (attempt >= 3) throw error
      await new Promise((resolve) => setTimeout(resolve, 1_000))
    }
  }
}

/**
 * A verification failure, said plainly when the file is a metadata-only archive
 * (`vm-export --metadata-only`: ova.xml and no disk data), which `/import` cannot restore.
 */
async function explainMetadataOnly(
  file: string,
  size: number,
  error: unknown,
  signal: AbortSignal
): Promise<never> {
  if (error instanceof XvaVerificationError && size < 64 * 1024 * 1024) {
    const metadataOnly = await verifyFile(file, { metadataOnly: true, signal }).then(
      () => true,
      () => false
    )
    if (metadataOnly) {
      throw new XvaVerificationError(
        'a metadata-only archive (vm-export --metadata-only): it holds no disk data, vm-import restores full archives only',
        { cause: error }
      )
    }
  }
  throw error
}

/** What one attempt sends: the file, or its zstd stream decompressed here (`tarBytes` long). */
type Body = {
  readonly zstd: boolean
  readonly decompress: boolean
  /** Content-Length; undefined: the body ends with a half-close. */
  readonly length: number | undefined
  /** The uncompressed archive's size, from the local verification. */
  readonly tarBytes?: number
}

/** One `PUT /import` of the file, its progress on the display. */
async function importOnce(
  file: string,
  label: string,
  body: Body,
  tasks: string[],
  ctx: ImportJobContext,
  signal: AbortSignal
): Promise<Ref<'VM'>[]> {
  // Opened first: a file that cannot be read fails here, before a task or a connection exists.
  const fh = await open(file, 'r')
  const handle = ctx.display.start(file, label)
  const read = fh.createReadStream({ highWaterMark: 1024 * 1024 })
  let source: Readable = read
  if (body.decompress) {
    const z = new DecompressStream()
    read.once('error', (error) => z.destroy(error))
    z.once('close', () => read.destroy())
    source = read.pipe(z)
  }
  try {
    return await importVm(tracking(ctx.client, tasks), source, {
      sr: ctx.sr.ref,
      restore: ctx.restore,
      force: ctx.force,
      length: body.length,
      signal,
      onProgress: (p) => handle.update(p.bytes, p.fraction),
    })
  } finally {
    handle.finish()
    read.destroy()
  }
}

/**
 * xapi took a zstd archive for something else: an `IMPORT_ERROR` about the archive's format, not
 * a cut upload (`IMPORT_ERROR_PREMATURE_EOF`, which `--retries` handles) nor a damaged block (a
 * host that reports a block checksum read the zstd stream).
 */
function readsNoZstd(error: unknown): boolean {
  if (!isXapiError(error, 'IMPORT_ERROR')) return false
  const params = (error as { params?: unknown }).params
  return !/checksum/i.test(Array.isArray(params) ? params.join(' ') : '')
}

/** The client, with the refs of the tasks the import creates noted in `tasks`. */
function tracking(client: XapiClient, tasks: string[]): TransferClient {
  return {
    sessionRef: (signal?: AbortSignal) => client.sessionRef(signal),
    hostUrl: () => client.hostUrl(),
    agentFor: (url: URL) => client.agentFor(url),
    call: (method: string, ...params: unknown[]) => client.call(method, ...params),
    trustPoolCertificates: (signal?: AbortSignal) => client.trustPoolCertificates(signal),
    createTask: async (label: string, description?: string) => {
      const task = await client.createTask(label, description)
      tasks.push(task.ref)
      return task
    },
  }
}

/**
 * Destroys what a failed import left: the VMs it returned, and the VMs whose
 * `other_config:import_task` is its task (xapi cleans up itself, unless `force` or a crash).
 * Returns a message when something could not be destroyed.
 */
async function destroyLeftovers(
  ctx: ImportJobContext,
  file: string,
  tasks: readonly string[],
  returned: readonly Ref<'VM'>[]
): Promise<string | undefined> {
  const refs = new Set<Ref<'VM'>>(returned)
  for (const task of tasks) ctx.failedImportTasks.add(task)
  if (tasks.length > 0) {
    try {
      const vms = await ctx.client.getAllRecords('VM', { signal: AbortSignal.timeout(60_000) })
      for (const [ref, vm] of vms) {
        if (tasks.includes(vm.other_config.import_task ?? '')) refs.add(ref)
      }
    } catch (error) {
      return `could not look for VMs left by the import: ${describeError(error)}`
    }
  }
  const failures: string[] = []
  for (const ref of refs) {
    try {
      const uuid = await ctx.client
        .callWith<string>('VM.get_uuid', [ref], { signal: AbortSignal.timeout(60_000) })
        .catch(() => ref)
      await destroyVmWithDisks(ctx.client, ref)
      ctx.emit({ kind: 'leftover-destroyed', file, vm: uuid })
    } catch (error) {
      failures.push(`VM ${ref} left behind: ${describeError(error)}`)
    }
  }
  if (failures.length > 0) {
    for (const f of failures) ctx.warn(`${file}: ${f}`)
    return failures.join('; ')
  }
  return undefined
}
