import { isNullRef, isXapiError, type Ref, type XapiClient } from '@xapi-ops/xapi'
import { CLEANUP_TIMEOUT_MS, destroyVmWithDisks } from '../transfer/destroy-vm.js'

/** A snapshot taken for an export. */
export type ExportSnapshot = { readonly ref: Ref<'VM'>; readonly uuid: string }

/**
 * `VM.snapshot`, named exactly like the VM: the name travels in the archive, and a VM restored
 * from it must get the original name. (Nor is it marked in `other_config`, for the same reason.)
 */
export async function takeSnapshot(
  client: XapiClient,
  vm: Ref<'VM'>,
  name: string,
  signal: AbortSignal
): Promise<ExportSnapshot> {
  const before = await client.callWith<Ref<'VM'>[]>('VM.get_snapshots', [vm], { signal })
  let ref: Ref<'VM'>
  try {
    ref = await client.callAsync<Ref<'VM'>>('VM.snapshot', [vm, name], { signal })
  } catch (error) {
    // Cancelled (interrupt) after xapi made the snapshot: the task's result is lost, so look for
    // a snapshot of the VM that was not there before.
    await destroyNewSnapshots(client, vm, before).catch(() => {})
    throw error
  }
  try {
    const uuid = await client.callWith<string>('VM.get_uuid', [ref], { signal })
    return { ref, uuid }
  } catch (error) {
    await destroySnapshot(client, ref).catch(() => {})
    throw error
  }
}

async function destroyNewSnapshots(
  client: XapiClient,
  vm: Ref<'VM'>,
  before: readonly Ref<'VM'>[]
): Promise<void> {
  const signal = AbortSignal.timeout(CLEANUP_TIMEOUT_MS)
  const now = await client.callWith<Ref<'VM'>[]>('VM.get_snapshots', [vm], { signal })
  for (const snapshot of now) {
    if (!before.includes(snapshot)) await destroySnapshot(client, snapshot)
  }
}

/** Destroys a snapshot taken for an export and its disks, also after an interrupt. */
export function destroySnapshot(client: XapiClient, snapshot: Ref<'VM'>): Promise<void> {
  return destroyVmWithDisks(client, snapshot)
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

/** The VM's power state, read with its own time budget (for cleanup after an interrupt). */
export function powerStateOf(client: XapiClient, vm: Ref<'VM'>): Promise<string> {
  return client.callWith<string>('VM.get_power_state', [vm], {
    signal: AbortSignal.timeout(CLEANUP_TIMEOUT_MS),
  })
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
