import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import type { Readable } from 'node:stream'
import { importVm, isXapiError, type Ref, type XapiClient } from '@xapi-ops/xapi'
import { DecompressStream } from 'zstd-napi'
import { describeError } from '../../lib/errors.js'
import { sleep } from '../../lib/sleep.js'
import { failureCode, type ItemResult } from '../../lib/results.js'
import { destroyVmWithDisks } from '../transfer/destroy-vm.js'
import type { ProgressDisplay } from '../transfer/progress-display.js'
import { backoffMs, isRetriable } from '../transfer/retry.js'
import { verifyFile } from '../transfer/verify-file.js'
import type { VmImportEvent } from './events.js'
import { fileLabel } from './files.js'
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
}

type TransferClient = Parameters<typeof importVm>[0]

/**
 * Imports one file: local verification, `PUT /import` with its Content-Length, then `--start`.
 * When the import fails, VMs it created (found by `other_config:import_task`) are destroyed with
 * their disks. Never throws: the outcome is the returned result.
 */
export async function runImportJob(
  file: string,
  ctx: ImportJobContext,
  signal: AbortSignal
): Promise<ItemResult> {
  const label = fileLabel(file)
  const tasks: string[] = []
  let newVms: Ref<'VM'>[] = []
  try {
    signal.throwIfAborted()
    const size = await fileSize(file)
    let name: string | undefined
    // What the host is sent: the file as it is, or (see below) its tar decompressed here.
    let body: Body = { zstd: file.endsWith('.zst'), decompress: false, length: size }
    if (ctx.verify) {
      const { summary } = await verifyFile(file, { signal })
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
    }
    ctx.emit({ kind: 'import-start', file, bytes: size })
    const started = Date.now()
    for (let attempt = 1; ; attempt++) {
      try {
        newVms = await importOnce(file, label, body, tasks, ctx, signal)
        break
      } catch (error) {
        if (!signal.aborted && body.zstd && !body.decompress && isImportError(error)) {
          // A verified zstd archive the host cannot read: an xapi without zstd. Send the tar.
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
    const first = newVms[0]
    if (first === undefined) throw new Error('the import created no VM')
    const record = await ctx.client.getRecord('VM', first, { signal })
    name = record.name_label || name || ''
    const newVm = record.uuid
    const extra =
      newVms.length > 1
        ? {
            newVms: await Promise.all(
              newVms.map((ref) => ctx.client.callWith<string>('VM.get_uuid', [ref], { signal }))
            ),
          }
        : {}
    const durationMs = Date.now() - started
    ctx.emit({ kind: 'import-done', file, newVm, name, durationMs })
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
  } catch (error) {
    const message = signal.aborted
      ? `interrupted (${describeError(signal.reason)})`
      : describeError(error)
    ctx.emit({ kind: 'import-failed', file, error: message })
    const leftovers = await destroyLeftovers(ctx, file, tasks, newVms)
    return {
      file,
      status: 'failed',
      action: 'none',
      error: leftovers ? `${message}; ${leftovers}` : message,
      ...failureCode(error, signal.aborted),
    }
  }
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
  const handle = ctx.display.start(file, label)
  const read = createReadStream(file, { highWaterMark: 1024 * 1024 })
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
  }
}

/**
 * xapi refused the archive itself: `IMPORT_ERROR`, not a cut upload (`IMPORT_ERROR_PREMATURE_EOF`,
 * which `--retries` handles), nor the connection or our file system.
 */
function isImportError(error: unknown): boolean {
  return isXapiError(error, 'IMPORT_ERROR')
}

async function fileSize(file: string): Promise<number> {
  let s
  try {
    s = await stat(file)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    throw Object.assign(
      new Error(
        code === 'ENOENT' ? `${file}: no such file` : `${file}: ${(error as Error).message}`,
        { cause: error }
      ),
      code === undefined ? {} : { code }
    )
  }
  if (!s.isFile()) throw new Error(`${file} is not a regular file`)
  return s.size
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
