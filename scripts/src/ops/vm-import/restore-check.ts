import type { XapiClient, XvaSummary } from '@xapi-ops/xapi'

/** `--restore` would harm the pool: checked before anything is sent. */
export class RestoreConflictError extends Error {
  override name = 'RestoreConflictError'
  readonly code = 'RESTORE_CONFLICT'
}

/**
 * What xapi would do wrong with `restore=true`, which keeps the archive's VM uuid and MAC
 * addresses, found before sending the file:
 * - the archive's VM is in the pool and not halted: xapi refuses (`VM_BAD_POWER_STATE`), or with
 *   `force` skips the VM after creating its disks, which stay behind unused;
 * - another VM of the pool has one of the archive's MAC addresses: a backup taken of a VM that
 *   still exists (vm-export exports running VMs through a snapshot, whose uuid the restored VM
 *   gets), so the restore would make a second VM with the same MACs on the network.
 * The VM that the restore replaces (same uuid, halted) and snapshots and templates, which share
 * their VM's MACs, do not count. Throws {@link RestoreConflictError}.
 */
export async function checkRestore(
  client: XapiClient,
  summary: XvaSummary,
  signal: AbortSignal
): Promise<void> {
  const [vms, vifs] = await Promise.all([
    client.getAllRecords('VM', { signal }),
    client.getAllRecords('VIF', { signal }),
  ])
  const archiveUuids = new Set(
    summary.vms.map((vm) => String(vm.snapshot.uuid ?? '').toLowerCase()).filter(Boolean)
  )
  for (const vm of vms.values()) {
    if (!archiveUuids.has(vm.uuid.toLowerCase()) || vm.power_state === 'Halted') continue
    throw new RestoreConflictError(
      `VM ${vm.name_label} (${vm.uuid}) is in the pool and ${vm.power_state}: --restore replaces a VM only when it is halted (shut it down first, or import without --restore for a new copy)`
    )
  }
  const macs = new Set<string>()
  for (const o of summary.header.objects) {
    if (o.class === 'VIF' && typeof o.snapshot.MAC === 'string' && o.snapshot.MAC !== '') {
      macs.add(o.snapshot.MAC.toLowerCase())
    }
  }
  for (const vif of vifs.values()) {
    if (!macs.has(vif.MAC.toLowerCase())) continue
    const vm = vms.get(vif.VM)
    if (vm === undefined || vm.is_a_template || vm.is_a_snapshot || vm.is_control_domain) continue
    if (archiveUuids.has(vm.uuid.toLowerCase())) continue
    throw new RestoreConflictError(
      `MAC ${vif.MAC} is in use by VM ${vm.name_label} (${vm.uuid}): --restore keeps the archive's MAC addresses, so the pool would have two VMs with the same MAC (is this a backup of a VM that still exists?); import without --restore for new MACs, or remove that VM first`
    )
  }
}
