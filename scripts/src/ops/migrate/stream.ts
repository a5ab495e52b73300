import type { PlannedVm } from './plan.js'
import type { MVm } from './records.js'
import { removeVmAndDisks } from './cleanup.js'
import { xapiCode, type CopyProgress, type MigrateXapi } from './xapi.js'

/**
 * Shuts the source down for a stream copy: `clean_shutdown` where allowed, bounded by
 * `cleanTimeoutMs`, else (or after it) `hard_shutdown`. Resolves with what was done.
 */
export async function shutdownSource(
  source: MigrateXapi,
  vmRef: string,
  options: {
    cleanTimeoutMs: number
    signal?: AbortSignal
    onAction?: (action: 'clean_shutdown' | 'hard_shutdown') => void
  }
): Promise<'none' | 'clean_shutdown' | 'hard_shutdown'> {
  const { signal } = options
  const vm = await source.call<MVm>('VM.get_record', [vmRef], { signal })
  if (vm.power_state === 'Halted' || vm.power_state === 'Suspended') return 'none'
  if (vm.power_state === 'Running' && (vm.allowed_operations ?? []).includes('clean_shutdown')) {
    options.onAction?.('clean_shutdown')
    const timeout = AbortSignal.timeout(options.cleanTimeoutMs)
    try {
      await source.callAsync('VM.clean_shutdown', [vmRef], {
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      })
      return 'clean_shutdown'
    } catch (error) {
      signal?.throwIfAborted()
      if (xapiCode(error) === 'VM_BAD_POWER_STATE') {
        const power = await source.call<string>('VM.get_power_state', [vmRef], { signal })
        if (power === 'Halted') return 'clean_shutdown'
      }
      // Timeout or refusal: fall back to a hard shutdown.
    }
  }
  options.onAction?.('hard_shutdown')
  await source.callAsync('VM.hard_shutdown', [vmRef], { signal })
  return 'hard_shutdown'
}

/**
 * Copies a halted (or suspended) VM by streaming its export from the source pool into an import
 * on the destination, through this process, with no temporary file (`relayVm`): memory stays
 * bounded and the export is verified in flight. Resolves with the new VM's ref; on failure
 * nothing is left on the destination.
 */
export async function copyStream(
  source: MigrateXapi,
  dest: MigrateXapi,
  vm: PlannedVm,
  destSr: string,
  options: {
    signal?: AbortSignal
    onTask?: (taskRef: string) => Promise<void>
    onImportTask?: (taskRef: string) => Promise<void>
    onProgress?: (progress: CopyProgress) => void
  }
): Promise<string> {
  const { signal } = options
  try {
    const refs = await source.relayVm(dest, vm.ref, {
      sr: destSr,
      signal,
      preservePowerState: vm.powerState === 'Suspended',
      onProgress: options.onProgress,
      onExportTask: options.onTask,
      onImportTask: options.onImportTask,
    })
    if (refs.length === 1) return refs[0]!
    for (const ref of refs) await removeVmAndDisks(dest, ref).catch(() => {})
    throw new Error(`the import created ${refs.length} VMs instead of 1`)
  } catch (error) {
    // Imported, but the export failed after its last byte: the copy cannot be trusted.
    const imported = (error as { importedVms?: unknown } | null)?.importedVms
    if (Array.isArray(imported)) {
      for (const ref of imported as string[]) await removeVmAndDisks(dest, ref).catch(() => {})
    }
    throw error
  }
}
