import { DiskContent } from '../disk/content.js'
import type { PoolDb, SimRecord } from './db.js'
import { newVbd, newVdi } from './records.js'

/** Recomputes an SR's `physical_utilisation` and `virtual_allocation` from its VDIs. */
export function refreshSr(db: PoolDb, srRef: string): void {
  const sr = db.get(srRef)
  if (!sr) return
  let phys = 0
  let virt = 0
  for (const vdiRef of sr.VDIs as string[]) {
    const vdi = db.get(vdiRef)
    if (!vdi) continue
    phys += Number(vdi.physical_utilisation)
    virt += Number(vdi.virtual_size)
  }
  if (sr.physical_utilisation !== phys || sr.virtual_allocation !== virt) {
    db.update(srRef, { physical_utilisation: phys, virtual_allocation: virt })
  }
}

/**
 * Creates a VDI on `sr` holding `content` (sizes taken from it), linked into `SR.VDIs`.
 * @returns the VDI ref
 */
export function createVdi(
  db: PoolDb,
  opts: { sr: string; content: DiskContent; record?: SimRecord }
): string {
  const ref = db.create(
    'VDI',
    newVdi({
      ...opts.record,
      SR: opts.sr,
      virtual_size: opts.content.virtualSize,
      physical_utilisation: opts.content.physicalUtilisation(),
      VBDs: [],
      snapshots: [],
    })
  )
  db.vdiContent.set(ref, opts.content)
  const vdi = db.get(ref)!
  if (vdi.location === '') db.update(ref, { location: vdi.uuid })
  db.addToSet(opts.sr, 'VDIs', ref)
  refreshSr(db, opts.sr)
  return ref
}

/** Re-reads `physical_utilisation`/`virtual_size` of a VDI from its content (after a write). */
export function refreshVdi(db: PoolDb, vdiRef: string): void {
  const content = db.vdiContent.get(vdiRef)
  const vdi = db.get(vdiRef)
  if (!content || !vdi) return
  db.update(vdiRef, {
    physical_utilisation: content.physicalUtilisation(),
    virtual_size: content.virtualSize,
  })
  refreshSr(db, vdi.SR as string)
}

/** Destroys a VDI and the VBDs that point at it; unlinks it from its SR and snapshot parent. */
export function destroyVdi(db: PoolDb, vdiRef: string): void {
  const vdi = db.get(vdiRef)
  if (!vdi) return
  for (const vbdRef of vdi.VBDs as string[]) {
    const vbd = db.get(vbdRef)
    if (vbd) db.removeFromSet(vbd.VM as string, 'VBDs', vbdRef)
    db.destroy(vbdRef)
  }
  if (db.has('VDI', vdi.snapshot_of))
    db.removeFromSet(vdi.snapshot_of as string, 'snapshots', vdiRef)
  db.removeFromSet(vdi.SR as string, 'VDIs', vdiRef)
  db.destroy(vdiRef)
  refreshSr(db, vdi.SR as string)
}

/** Creates a VBD linking `vm` and `vdi` (or an empty CD drive when `vdi` is NULL). */
export function createVbd(db: PoolDb, vm: string, vdi: string, record: SimRecord = {}): string {
  const ref = db.create('VBD', newVbd({ ...record, VM: vm, VDI: vdi }))
  db.addToSet(vm, 'VBDs', ref)
  if (db.has('VDI', vdi)) db.addToSet(vdi, 'VBDs', ref)
  return ref
}

/** A fresh empty disk content of `virtualSize` bytes. */
export function emptyContent(virtualSize: number): DiskContent {
  return DiskContent.empty(virtualSize)
}
