import type { XvaExportObject } from '@xapi-ops/xapi-formats'
import type { SimContext } from '../context.js'
import { DiskContent } from '../disk/content.js'
import type { SimRecord } from '../model/db.js'

const NULL = 'OpaqueRef:NULL'

/** What `/export` streams for one VM: ova.xml objects and the disks in them. */
export type VmExport = {
  objects: XvaExportObject[]
  /** VDIs whose data is streamed, with a copy-on-write snapshot of their content. */
  disks: { vdi: string; content: DiskContent }[]
  /** Sum of the streamed virtual sizes. */
  totalBytes: number
}

/**
 * The objects xapi's `Export` puts in a full VM export (§2.2): the VM (scrubbed), its metrics, VBDs,
 * VIFs and their networks, the non-empty VDIs and their SRs, and the suspend VDI when the power
 * state is preserved. Other refs become `OpaqueRef:NULL` in ova.xml.
 */
export function collectVmExport(
  ctx: SimContext,
  vmRef: string,
  opts: {
    preservePowerState: boolean
    /** Metadata export (`/export_metadata`): no disk data, snapshot fields kept. */
    metadata?: boolean
    /** With `metadata`: the VM's snapshots too (`export_snapshots`, default true). */
    snapshots?: boolean
    /** With `metadata`: `excluded_device_types` (`vif`, `vbd`). */
    exclude?: ReadonlySet<string>
  }
): VmExport {
  const db = ctx.db
  const vm = db.require('VM', vmRef)
  const suspended = opts.preservePowerState && vm.power_state === 'Suspended'
  const objects: XvaExportObject[] = []
  const add = (cls: string, ref: string, record: SimRecord): void => {
    if (!objects.some((o) => o.ref === ref)) objects.push({ class: cls, ref, record })
  }
  const vdis: string[] = []
  const addVm = (ref: string, r: SimRecord): void => {
    const vmRecord: SimRecord = {
      ...r,
      current_operations: {},
      allowed_operations: [],
      consoles: [],
      crash_dumps: [],
      blobs: {},
      protection_policy: NULL,
    }
    if (!opts.preservePowerState)
      Object.assign(vmRecord, { power_state: 'Halted', suspend_VDI: NULL })
    if (!opts.metadata) {
      Object.assign(vmRecord, {
        is_a_snapshot: false,
        snapshot_of: NULL,
        snapshots: [],
        parent: NULL,
      })
      vmRecord.transportable_snapshot_id = ''
    }
    add('VM', ref, vmRecord)
    for (const [cls, field] of [
      ['VM_metrics', 'metrics'],
      ['VM_guest_metrics', 'guest_metrics'],
    ] as const) {
      const m = r[field] as string | undefined
      const mr = m === undefined ? undefined : db.get(m)
      if (m !== undefined && mr) add(cls, m, mr)
    }
    for (const vbdRef of opts.exclude?.has('vbd') ? [] : ((r.VBDs as string[] | undefined) ?? [])) {
      const vbd = db.get(vbdRef)
      if (!vbd) continue
      add('VBD', vbdRef, opts.preservePowerState ? vbd : { ...vbd, currently_attached: false })
      if (db.has('VDI', vbd.VDI)) vdis.push(vbd.VDI as string)
    }
    for (const vifRef of opts.exclude?.has('vif') ? [] : ((r.VIFs as string[] | undefined) ?? [])) {
      const vif = db.get(vifRef)
      if (!vif) continue
      add('VIF', vifRef, opts.preservePowerState ? vif : { ...vif, currently_attached: false })
      const net = db.get(vif.network as string)
      if (net) add('network', vif.network as string, net)
    }
  }
  addVm(vmRef, vm)
  if (opts.metadata && (opts.snapshots ?? true)) {
    for (const snap of (vm.snapshots as string[] | undefined) ?? []) {
      const r = db.get(snap)
      if (r) addVm(snap, r)
    }
  }
  if (suspended && db.has('VDI', vm.suspend_VDI)) vdis.push(vm.suspend_VDI as string)
  for (const ref of vdis) add('VDI', ref, db.get(ref)!)
  for (const ref of vdis) {
    const sr = db.get(db.get(ref)!.SR as string)
    if (sr) add('SR', db.get(ref)!.SR as string, sr)
  }
  // streamed: VDIs of non-CD VBDs on non-iso SRs, plus the suspend VDI
  const streamed = new Set<string>()
  for (const o of objects) {
    if (o.class !== 'VBD' || o.record.type === 'CD' || !db.has('VDI', o.record.VDI)) continue
    const vdi = db.get(o.record.VDI as string)!
    if (db.get(vdi.SR as string)?.content_type !== 'iso') streamed.add(o.record.VDI as string)
  }
  if (suspended && db.has('VDI', vm.suspend_VDI)) streamed.add(vm.suspend_VDI as string)
  const disks = opts.metadata
    ? []
    : [...streamed].map((vdi) => {
        const size = Number(db.get(vdi)!.virtual_size)
        const content = db.vdiContent.get(vdi)?.clone() ?? DiskContent.empty(size)
        return { vdi, content }
      })
  // the VDI record's size must match the streamed content
  for (const d of disks) {
    const o = objects.find((x) => x.ref === d.vdi)!
    o.record = { ...o.record, virtual_size: d.content.virtualSize }
  }
  return { objects, disks, totalBytes: disks.reduce((s, d) => s + d.content.virtualSize, 0) }
}
