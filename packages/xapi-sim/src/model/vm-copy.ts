import type { PoolDb, SimRecord } from './db.js'
import { newVif, newVmMetrics, randomMac } from './records.js'
import { createVbd, createVdi, refreshSr } from './storage.js'
import { refreshAppliance, refreshVm } from './vm-state.js'

const NULL = 'OpaqueRef:NULL'

function clone<T>(v: T): T {
  return structuredClone(v)
}

/**
 * Copies a VM's record, disks (content cloned) and VIFs, as VM.snapshot (`snapshot: true`),
 * VM.clone and VM.copy (`sr` given) do. The copy is Halted and resident nowhere.
 */
export function copyVm(
  db: PoolDb,
  srcRef: string,
  opts: { name: string; snapshot: boolean; sr?: string }
): string {
  const src = db.require('VM', srcRef)
  const now = new Date()
  const rec: SimRecord = clone({ ...src })
  delete rec.uuid
  Object.assign(rec, {
    name_label: opts.name,
    power_state: 'Halted',
    resident_on: NULL,
    scheduled_to_be_resident_on: NULL,
    domid: -1,
    allowed_operations: [],
    current_operations: {},
    VBDs: [],
    VIFs: [],
    snapshots: [],
    guest_metrics: NULL,
    suspend_VDI: NULL,
    is_a_snapshot: opts.snapshot,
    snapshot_of: opts.snapshot ? srcRef : NULL,
    snapshot_time: opts.snapshot ? now : new Date(0),
    parent: opts.snapshot ? src.parent : NULL,
    children: [],
    is_control_domain: false,
    appliance: opts.snapshot ? NULL : src.appliance,
  })
  if (!opts.snapshot) rec.is_a_template = src.is_a_template
  rec.metrics = db.create('VM_metrics', newVmMetrics({ VCPUs_number: 0, install_time: now }))
  const ref = db.create('VM', rec)
  if (rec.appliance !== NULL && db.has('VM_appliance', rec.appliance))
    db.addToSet(rec.appliance, 'VMs', ref)

  const touchedSrs = new Set<string>()
  for (const vbdRef of src.VBDs as string[]) {
    const vbd = db.get(vbdRef)
    if (!vbd) continue
    const vbdCopy = clone({ ...vbd })
    delete vbdCopy.uuid
    Object.assign(vbdCopy, { currently_attached: false, current_operations: {}, device: '' })
    const vdi = db.get(vbd.VDI as string)
    let newVdi = NULL
    if (vdi) {
      const content = db.vdiContent.get(vbd.VDI as string)
      const sr = opts.sr ?? (vdi.SR as string)
      const vdiRec = clone({ ...vdi })
      delete vdiRec.uuid
      Object.assign(vdiRec, {
        is_a_snapshot: opts.snapshot,
        snapshot_of: opts.snapshot ? vbd.VDI : NULL,
        snapshot_time: opts.snapshot ? now : new Date(0),
        snapshots: [],
        current_operations: {},
        location: '',
      })
      newVdi = content
        ? createVdi(db, { sr, content: content.clone(), record: vdiRec })
        : db.create('VDI', { ...vdiRec, SR: sr, VBDs: [] })
      if (!content) db.addToSet(sr, 'VDIs', newVdi)
      if (opts.snapshot) db.addToSet(vbd.VDI as string, 'snapshots', newVdi)
      touchedSrs.add(sr)
    }
    delete vbdCopy.VBDs
    createVbd(db, ref, newVdi, { ...vbdCopy, empty: newVdi === NULL && vbd.type === 'CD' })
  }
  for (const sr of touchedSrs) refreshSr(db, sr)

  for (const vifRef of src.VIFs as string[]) {
    const vif = db.get(vifRef)
    if (!vif) continue
    const v = db.create(
      'VIF',
      newVif({
        device: vif.device,
        network: vif.network,
        VM: ref,
        MAC: opts.snapshot ? vif.MAC : randomMac(),
        MTU: vif.MTU,
        other_config: clone(vif.other_config),
        locking_mode: vif.locking_mode,
      })
    )
    db.addToSet(ref, 'VIFs', v)
    if (db.has('network', vif.network)) db.addToSet(vif.network as string, 'VIFs', v)
  }

  if (opts.snapshot) {
    db.addToSet(srcRef, 'snapshots', ref)
    db.update(srcRef, { parent: ref })
  }
  refreshVm(db, ref)
  return ref
}

/**
 * Removes a VM with its VBDs, VIFs and metrics (VDIs stay, as with xapi's VM.destroy), and
 * unlinks it from its appliance, host and snapshot parent.
 */
export function destroyVmRecord(db: PoolDb, ref: string): void {
  const vm = db.get(ref)
  if (!vm) return
  for (const vbdRef of vm.VBDs as string[]) {
    const vbd = db.get(vbdRef)
    if (vbd && db.has('VDI', vbd.VDI)) db.removeFromSet(vbd.VDI as string, 'VBDs', vbdRef)
    db.destroy(vbdRef)
  }
  for (const vifRef of vm.VIFs as string[]) {
    const vif = db.get(vifRef)
    if (vif && db.has('network', vif.network))
      db.removeFromSet(vif.network as string, 'VIFs', vifRef)
    db.destroy(vifRef)
  }
  if (db.has('VM_metrics', vm.metrics)) db.destroy(vm.metrics as string)
  if (db.has('VM_guest_metrics', vm.guest_metrics)) db.destroy(vm.guest_metrics as string)
  if (db.has('VM_appliance', vm.appliance)) {
    db.removeFromSet(vm.appliance as string, 'VMs', ref)
    refreshAppliance(db, vm.appliance as string)
  }
  if (db.has('host', vm.resident_on))
    db.removeFromSet(vm.resident_on as string, 'resident_VMs', ref)
  if (db.has('VM', vm.snapshot_of)) db.removeFromSet(vm.snapshot_of as string, 'snapshots', ref)
  for (const snap of vm.snapshots as string[]) {
    if (db.has('VM', snap)) db.update(snap, { snapshot_of: NULL })
  }
  db.destroy(ref)
}
