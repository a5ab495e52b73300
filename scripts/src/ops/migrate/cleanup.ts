import { isNull, MIGRATE_MARKER, VERIFIED_MARKER, type MVbd, type MVm } from './records.js'
import { ignoring, type MigrateXapi } from './xapi.js'

const GONE = ['HANDLE_INVALID', 'UUID_INVALID']

/** What {@link removeVmAndDisks} removed, and the disks it kept because other VMs use them. */
export type Removal = { readonly snapshots: number; readonly keptDisks: readonly string[] }

/**
 * Destroys a VM with its snapshots and their disks (VDIs of Disk VBDs, suspend VDIs),
 * hard-shutting it down first if needed. A disk that another VM also uses is kept (as
 * `xe vm-uninstall` does) and reported by uuid. A VM that is already gone is not an error.
 */
export async function removeVmAndDisks(
  xapi: MigrateXapi,
  ref: string,
  signal?: AbortSignal
): Promise<Removal> {
  const vm = await ignoring(GONE, () => xapi.call<MVm>('VM.get_record', [ref], { signal }))
  if (vm === undefined) return { snapshots: 0, keptDisks: [] }
  const keptDisks: string[] = []
  let snapshots = 0
  for (const snapshot of vm.snapshots ?? []) {
    const kept = await removeOne(xapi, snapshot, undefined, signal)
    if (kept !== undefined) {
      snapshots++
      keptDisks.push(...kept)
    }
  }
  keptDisks.push(...((await removeOne(xapi, ref, vm, signal)) ?? []))
  return { snapshots, keptDisks }
}

/** Destroys one VM (or snapshot) and the disks only it uses; the uuids of those kept. */
async function removeOne(
  xapi: MigrateXapi,
  ref: string,
  known: MVm | undefined,
  signal?: AbortSignal
): Promise<string[] | undefined> {
  const vm =
    known ?? (await ignoring(GONE, () => xapi.call<MVm>('VM.get_record', [ref], { signal })))
  if (vm === undefined) return undefined
  if (vm.power_state !== 'Halted' && !vm.is_a_snapshot) {
    await ignoring(['VM_BAD_POWER_STATE'], () =>
      xapi.callAsync('VM.hard_shutdown', [ref], { signal })
    )
  }
  const vdis: string[] = []
  for (const vbdRef of vm.VBDs) {
    const vbd = await ignoring(GONE, () => xapi.call<MVbd>('VBD.get_record', [vbdRef], { signal }))
    if (vbd && vbd.type === 'Disk' && !isNull(vbd.VDI)) vdis.push(vbd.VDI)
  }
  if (!isNull(vm.suspend_VDI)) vdis.push(vm.suspend_VDI!)
  await ignoring(GONE, () => xapi.callAsync('VM.destroy', [ref], { signal }))
  const kept: string[] = []
  for (const vdi of new Set(vdis)) {
    // VM.destroy removed this VM's VBDs: any left belong to other VMs.
    const vbds = await ignoring(GONE, () => xapi.call<string[]>('VDI.get_VBDs', [vdi], { signal }))
    if (vbds === undefined) continue
    if (vbds.length > 0) {
      kept.push(
        (await ignoring(GONE, () => xapi.call<string>('VDI.get_uuid', [vdi], { signal }))) ?? vdi
      )
      continue
    }
    await ignoring(GONE, () => xapi.callAsync('VDI.destroy', [vdi], { signal }))
  }
  return kept
}

/** A destination VM that a copy of a source VM made (it carries {@link MIGRATE_MARKER}). */
export type FoundCopy = {
  readonly ref: string
  readonly uuid: string
  readonly powerState: string
  /** The method of a verified copy ({@link VERIFIED_MARKER}); undefined: not verified. */
  readonly verified?: string
}

/** Destination VMs that copies of source VM `sourceUuid` left (the marker in other_config). */
export async function findCopies(
  dest: MigrateXapi,
  sourceUuid: string,
  signal?: AbortSignal
): Promise<FoundCopy[]> {
  const vms = await dest.getAllRecords<MVm>('VM', { signal })
  return [...vms]
    .filter(([, vm]) => vm.other_config?.[MIGRATE_MARKER] === sourceUuid && !vm.is_a_snapshot)
    .map(([ref, vm]) => {
      const [from, method] = (vm.other_config?.[VERIFIED_MARKER] ?? '').split('/')
      return {
        ref,
        uuid: vm.uuid,
        powerState: vm.power_state,
        ...(from === sourceUuid && { verified: method || 'stream' }),
      }
    })
}

/** Cancels and destroys a task another run (or a crashed process) left behind; best effort. */
export async function dropTask(
  xapi: MigrateXapi,
  ref: string,
  signal?: AbortSignal
): Promise<void> {
  const status = await ignoring(GONE, () =>
    xapi.call<string>('task.get_status', [ref], { signal })
  ).catch(() => undefined)
  if (status === undefined) return
  if (status === 'pending') {
    await xapi.call('task.cancel', [ref], { signal }).catch(() => {})
    // Give it a moment to reach a cancellable point; then it is gone or finished either way.
    await xapi
      .watchTask(ref, {
        signal: AbortSignal.any([AbortSignal.timeout(30_000), ...(signal ? [signal] : [])]),
      })
      .catch(() => {})
  }
  await xapi.call('task.destroy', [ref], { signal }).catch(() => {})
}

/** Starts the source VM again if it exists and is halted (we shut it down, the copy failed). */
export async function restartSource(
  source: MigrateXapi,
  ref: string,
  signal?: AbortSignal
): Promise<boolean> {
  const power = await ignoring(GONE, () =>
    source.call<string>('VM.get_power_state', [ref], { signal })
  )
  if (power !== 'Halted') return false
  await source.callAsync('VM.start', [ref, false, false], { signal })
  return true
}

/** Sets one other_config key (XAPI's add fails with MAP_DUPLICATE_KEY when it exists). */
export async function setOtherConfig(
  xapi: MigrateXapi,
  ref: string,
  key: string,
  value: string,
  signal?: AbortSignal
): Promise<void> {
  await xapi.call('VM.remove_from_other_config', [ref, key], { signal })
  await xapi.call('VM.add_to_other_config', [ref, key, value], { signal })
}
