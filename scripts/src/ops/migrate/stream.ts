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
 * on the destination, through this process, with no temporary file: memory stays bounded by the
 * streams' backpressure and the export is verified in flight. Resolves with the new VM's ref;
 * on failure nothing is left on the destination.
 */
export async function copyStream(
  source: MigrateXapi,
  dest: MigrateXapi,
  vm: PlannedVm,
  destSr: string,
  options: {
    signal?: AbortSignal
    onTask?: (taskRef: string) => Promise<void>
    onProgress?: (progress: CopyProgress) => void
  }
): Promise<string> {
  const { signal } = options
  const exported = await source.exportVm(vm.ref, {
    signal,
    preservePowerState: vm.powerState === 'Suspended',
  })
  try {
    await options.onTask?.(exported.taskRef)
  } catch (error) {
    exported.body.destroy()
    await exported.task.catch(() => {})
    throw error
  }
  const importing = dest.importVm(exported.body, {
    sr: destSr,
    signal,
    onProgress: options.onProgress,
  })
  const [imported, export_] = await Promise.allSettled([importing, exported.task])
  if (imported.status === 'fulfilled') {
    const refs = imported.value
    if (export_.status === 'fulfilled' && refs.length === 1) return refs[0]!
    for (const ref of refs) await removeVmAndDisks(dest, ref).catch(() => {})
    if (export_.status === 'rejected') throw export_.reason
    throw new Error(`the import created ${refs.length} VMs instead of 1`)
  }
  if (!exported.body.destroyed) exported.body.destroy()
  // The export's own failure (verification, task error) explains a broken import best, unless it
  // only says its body was destroyed because the import gave up.
  if (
    export_.status === 'rejected' &&
    (export_.reason as { code?: unknown } | null)?.code !== 'XAPI_CLIENT_BODY_DESTROYED' &&
    !signal?.aborted
  ) {
    throw export_.reason
  }
  throw imported.reason
}
