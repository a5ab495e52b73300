import { isNullRef, isXapiError, type Ref, type XapiClient } from '@xapi-ops/xapi'

/** Cleanup also runs after an interrupt: it gets its own time budget, not the run's signal. */
export const CLEANUP_TIMEOUT_MS = 120_000

/**
 * Destroys a VM (or snapshot) and its disks (`VM.destroy` alone keeps VDIs), halting it first if
 * needed. A VM already gone is not an error. Runs under its own timeout.
 */
export async function destroyVmWithDisks(client: XapiClient, vm: Ref<'VM'>): Promise<void> {
  const signal = AbortSignal.timeout(CLEANUP_TIMEOUT_MS)
  const opts = { signal }
  const vdis: Ref<'VDI'>[] = []
  try {
    const record = await client.getRecord('VM', vm, opts)
    for (const vbd of record.VBDs) {
      const vbdRecord = await client.getRecord('VBD', vbd, opts)
      if (vbdRecord.type !== 'CD' && !isNullRef(vbdRecord.VDI)) vdis.push(vbdRecord.VDI)
    }
    if (record.power_state !== 'Halted' && !record.is_a_snapshot) {
      await client.callAsync('VM.hard_shutdown', [vm], opts).catch(() => {})
    }
    await client.callWith('VM.destroy', [vm], opts)
  } catch (error) {
    if (isXapiError(error, 'HANDLE_INVALID')) return
    throw error
  }
  const failures: string[] = []
  for (const vdi of new Set(vdis)) {
    try {
      await client.callWith('VDI.destroy', [vdi], opts)
    } catch (error) {
      if (!isXapiError(error, 'HANDLE_INVALID')) failures.push((error as Error).message)
    }
  }
  if (failures.length > 0) throw new Error(`disks not destroyed: ${failures.join('; ')}`)
}
