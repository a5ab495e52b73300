import { readdir, readFile } from 'node:fs/promises'
import { hostname } from 'node:os'
import { basename, join } from 'node:path'
import { isXapiError, type Ref, type XapiClient } from '@xapi-ops/xapi'
import { describeError } from '../../lib/errors.js'
import { removeQuietly, writeFileAtomic } from '../transfer/fs-utils.js'
import { CLEANUP_TIMEOUT_MS } from '../transfer/destroy-vm.js'
import type { VmExportEvent } from './events.js'
import { PENDING_PREFIX, type PendingEntry, type PendingFile } from './pending.js'
import { destroySnapshot, powerStateOf, restartVm } from './vm-power.js'

const FILE = new RegExp(`^${PENDING_PREFIX.replace('.', '\\.')}(\\d+)\\.json$`)

type Hooks = {
  readonly emit: (event: VmExportEvent) => void
  readonly warn: (message: string) => void
}

/**
 * Undoes what earlier runs into `dir` could not because they were killed (their pending files,
 * see `PendingStore`): removes the `.part` files they were writing, destroys the snapshots they
 * took, starts the VMs they shut down that are still halted. Files of a process still alive, of another machine or of another pool are left
 * alone (the first two with a warning). With `dryRun` only warns. Never throws: what cannot be
 * undone stays in its file for the next run. Resolves with how many changes were undone.
 */
export async function recoverPending(
  client: XapiClient,
  dir: string,
  pool: string,
  options: Hooks & { readonly dryRun: boolean }
): Promise<number> {
  let names: string[]
  try {
    names = await readdir(dir)
  } catch {
    return 0
  }
  let undone = 0
  for (const name of names) {
    const match = FILE.exec(name)
    if (!match) continue
    const file = join(dir, name)
    let data: PendingFile
    try {
      data = JSON.parse(await readFile(file, 'utf8')) as PendingFile
      if (
        data.version !== 1 ||
        !Number.isSafeInteger(data.pid) ||
        data.pid <= 0 ||
        typeof data.entries !== 'object' ||
        data.entries === null
      )
        throw new Error('not a pending file of version 1')
    } catch (error) {
      options.warn(`${file}: unreadable, left as it is: ${describeError(error)}`)
      continue
    }
    if (data.pool !== pool) continue
    if (data.hostname !== hostname()) {
      options.warn(
        `${file}: left by a run on ${data.hostname} (pid ${data.pid}), which may still be running: not undone here`
      )
      continue
    }
    if (isAlive(data.pid)) continue
    const entries = Object.values(data.entries)
    if (options.dryRun) {
      for (const e of entries) {
        if (e.action !== 'export') options.warn(`${e.name}: ${describe(e)} (a real run undoes it)`)
      }
      continue
    }
    const left: Record<string, PendingEntry> = {}
    for (const entry of entries) {
      // The archive the killed run was writing: never a result (a rerun exports it again).
      if (entry.part !== undefined) await removeQuietly(join(dir, basename(entry.part)))
      if (await undo(client, entry, data.pid, options)) undone++
      else left[entry.vm] = entry
    }
    if (Object.keys(left).length === 0) await removeQuietly(file)
    else
      await writeFileAtomic(file, `${JSON.stringify({ ...data, entries: left }, null, 2)}\n`).catch(
        () => {}
      )
  }
  return undone
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

function describe(e: PendingEntry): string {
  if (e.action === 'offline') return 'shut down for an export by a run that was killed'
  return e.snapshot
    ? `snapshot ${e.snapshot.uuid} taken for an export by a run that was killed`
    : 'a run was killed while it took a snapshot for an export'
}

/** Undoes one entry; true when nothing is left to do for it. */
async function undo(
  client: XapiClient,
  entry: PendingEntry,
  pid: number,
  { emit, warn }: Hooks
): Promise<boolean> {
  const id = { vm: entry.vm, name: entry.name }
  const signal = AbortSignal.timeout(CLEANUP_TIMEOUT_MS)
  const report = (action: string, error?: unknown) =>
    emit({
      kind: 'leftover',
      ...id,
      pid,
      action,
      ...(error !== undefined && { error: describeError(error) }),
    })
  try {
    if (entry.action === 'export') return true
    if (entry.action === 'snapshot') {
      if (entry.snapshot === undefined) {
        // The snapshot's ref never came back: name the candidates, destroy nothing.
        warn(`${entry.name}: ${describe(entry)}; look for a snapshot named like the VM`)
        return true
      }
      const ref = entry.snapshot.ref as Ref<'VM'>
      const record = await client
        .getRecord('VM', ref, { signal })
        .catch((error: unknown) =>
          isXapiError(error, 'HANDLE_INVALID') ? undefined : Promise.reject(error)
        )
      if (record === undefined || !record.is_a_snapshot || record.uuid !== entry.snapshot.uuid)
        return true
      await destroySnapshot(client, ref)
      report(`snapshot ${entry.snapshot.uuid} destroyed`)
      return true
    }
    const vm = await client
      .callWith<Ref<'VM'>>('VM.get_by_uuid', [entry.vm], { signal })
      .catch((error: unknown) =>
        isXapiError(error, 'UUID_INVALID') ? undefined : Promise.reject(error)
      )
    if (vm === undefined || (await powerStateOf(client, vm)) !== 'Halted') return true
    await restartVm(client, vm, {
      host: entry.host as Ref<'host'> | undefined,
      paused: entry.paused === true,
    })
    report('started again')
    return true
  } catch (error) {
    report(entry.action === 'offline' ? 'start' : 'destroy snapshot', error)
    return false
  }
}
