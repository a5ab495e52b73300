import { isNullRef, isXapiError, type Ref, type XapiClient } from '@xapi-ops/xapi'

/** Marks snapshots taken by vm-export (`other_config`), so that a leftover is recognisable. */
export const SNAPSHOT_MARK = 'xapi-ops-export-snapshot'

/** Cleanup runs after an interrupt too: it gets its own time budget, not the run's signal. */
const CLEANUP_TIMEOUT_MS = 120_000

/** A snapshot taken for an export. */
export type ExportSnapshot = { readonly ref: Ref<'VM'>; readonly uuid: string }

/** `VM.snapshot`, marked as ours. */
export async function takeSnapshot(
  client: XapiClient,
  vm: Ref<'VM'>,
  name: string,
  signal: AbortSignal
): Promise<ExportSnapshot> {
  const label = `${name} (vm-export ${new Date().toISOString()})`
  const ref = await client.callAsync<Ref<'VM'>>('VM.snapshot', [vm, label], { signal })
  try {
    await client
      .callWith('VM.add_to_other_config', [ref, SNAPSHOT_MARK, 'true'], { signal })
      .catch(() => {})
    const uuid = await client.callWith<string>('VM.get_uuid', [ref], { signal })
    return { ref, uuid }
  } catch (error) {
    await destroySnapshot(client, ref).catch(() => {})
    throw error
  }
}

/**
 * Destroys a snapshot and its disks (`VM.destroy` keeps VDIs). Runs under its own timeout, so
 * that it also works after the run was interrupted.
 */
export async function destroySnapshot(client: XapiClient, snapshot: Ref<'VM'>): Promise<void> {
  const signal = AbortSignal.timeout(CLEANUP_TIMEOUT_MS)
  const opts = { signal }
  let vdis: Ref<'VDI'>[] = []
  try {
    const vbds = await client.callWith<Ref<'VBD'>[]>('VM.get_VBDs', [snapshot], opts)
    for (const vbd of vbds) {
      const record = await client.getRecord('VBD', vbd, opts)
      if (record.type !== 'CD' && !isNullRef(record.VDI)) vdis.push(record.VDI)
    }
  } catch (error) {
    if (isXapiError(error, 'HANDLE_INVALID')) return
    throw error
  }
  await client.callWith('VM.destroy', [snapshot], opts)
  vdis = [...new Set(vdis)]
  const failures: string[] = []
  for (const vdi of vdis) {
    try {
      await client.callWith('VDI.destroy', [vdi], opts)
    } catch (error) {
      if (!isXapiError(error, 'HANDLE_INVALID')) failures.push((error as Error).message)
    }
  }
  if (failures.length > 0) {
    throw new Error(`snapshot disks not destroyed: ${failures.join('; ')}`)
  }
}

/** How a VM was stopped for an offline export. */
export type StopAction = 'clean_shutdown' | 'hard_shutdown'

/** Clean shutdown within `cleanTimeoutMs`, else hard shutdown (the task of the first is cancelled). */
export async function stopVm(
  client: XapiClient,
  vm: Ref<'VM'>,
  options: { readonly cleanTimeoutMs: number; readonly signal: AbortSignal }
): Promise<StopAction> {
  const { signal } = options
  const timeout = AbortSignal.timeout(options.cleanTimeoutMs)
  try {
    await client.callAsync('VM.clean_shutdown', [vm], {
      signal: AbortSignal.any([signal, timeout]),
    })
    return 'clean_shutdown'
  } catch (error) {
    signal.throwIfAborted()
    if (isXapiError(error, 'VM_BAD_POWER_STATE') && (await isHalted(client, vm, signal))) {
      return 'clean_shutdown'
    }
  }
  await client.callAsync('VM.hard_shutdown', [vm], { signal })
  return 'hard_shutdown'
}

async function isHalted(client: XapiClient, vm: Ref<'VM'>, signal: AbortSignal): Promise<boolean> {
  const state = await client.callWith<string>('VM.get_power_state', [vm], { signal })
  return state === 'Halted'
}

/**
 * Starts a VM again after an offline export, on the host it ran on when possible (also after an
 * interrupt: its own time budget). `paused` restores a paused VM as paused.
 */
export async function restartVm(
  client: XapiClient,
  vm: Ref<'VM'>,
  options: { readonly host: Ref<'host'> | undefined; readonly paused: boolean }
): Promise<void> {
  const signal = AbortSignal.timeout(CLEANUP_TIMEOUT_MS)
  if (options.host !== undefined && !isNullRef(options.host)) {
    try {
      await client.callAsync('VM.start_on', [vm, options.host, options.paused, false], { signal })
      return
    } catch (error) {
      if (isXapiError(error, 'VM_BAD_POWER_STATE')) throw error
    }
  }
  await client.callAsync('VM.start', [vm, options.paused, false], { signal })
}
