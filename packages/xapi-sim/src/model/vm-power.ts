import { DiskContent } from '../disk/content.js'
import { XapiFailure } from '../errors.js'
import type { PoolDb } from './db.js'
import { newVmGuestMetrics } from './records.js'
import { createVdi, destroyVdi } from './storage.js'
import { hostFreeMemory, refreshHostMemory, refreshVm, vmMemory } from './vm-state.js'

const NULL = 'OpaqueRef:NULL'

/** Whether the VM's SRs are all plugged on `hostRef` (PBD on that host). */
export function missingSrOn(db: PoolDb, vmRef: string, hostRef: string): string | undefined {
  const vm = db.require('VM', vmRef)
  for (const vbdRef of vm.VBDs as string[]) {
    const vdi = db.get(db.get(vbdRef)?.VDI as string)
    if (!vdi) continue
    const sr = db.get(vdi.SR as string)
    if (!sr) continue
    const plugged = (sr.PBDs as string[]).some((p) => db.get(p)?.host === hostRef)
    if (!plugged) return vdi.SR as string
  }
  return undefined
}

/** Throws why `vm` cannot run on `hostRef` now (disabled, memory, storage). */
export function assertCanRunOn(db: PoolDb, vmRef: string, hostRef: string): void {
  const host = db.require('host', hostRef)
  const vm = db.require('VM', vmRef)
  if (!host.enabled) throw new XapiFailure('HOST_DISABLED', [hostRef])
  const metrics = db.get(host.metrics as string)
  if (metrics && metrics.live === false) throw new XapiFailure('HOST_OFFLINE', [hostRef])
  const sr = missingSrOn(db, vmRef, hostRef)
  if (sr !== undefined) throw new XapiFailure('VM_REQUIRES_SR', [vmRef, sr])
  if (vm.resident_on !== hostRef) {
    const needed = vmMemory(vm)
    const available = hostFreeMemory(db, hostRef)
    if (needed > available)
      throw new XapiFailure('HOST_NOT_ENOUGH_FREE_MEMORY', [String(needed), String(available)])
  }
}

/** Picks a host for a VM: affinity if it fits, else the enabled host with most free memory. */
export function placeVm(db: PoolDb, vmRef: string, exclude?: string): string {
  const vm = db.require('VM', vmRef)
  const candidates: [string, number][] = []
  for (const [ref] of db.all('host')) {
    if (ref === exclude) continue
    try {
      assertCanRunOn(db, vmRef, ref)
      candidates.push([ref, hostFreeMemory(db, ref)])
    } catch {
      // not a candidate
    }
  }
  if (candidates.length === 0) throw new XapiFailure('NO_HOSTS_AVAILABLE', [])
  if (candidates.some(([r]) => r === vm.affinity)) return vm.affinity as string
  candidates.sort((a, b) => b[1] - a[1])
  return candidates[0]![0]
}

function setDevicesAttached(db: PoolDb, vmRef: string, attached: boolean): void {
  const vm = db.get(vmRef)!
  ;(vm.VBDs as string[]).forEach((vbd) => {
    if (db.get(vbd)?.currently_attached !== attached)
      db.update(vbd, { currently_attached: attached })
  })
  ;(vm.VIFs as string[]).forEach((vif) => {
    if (db.get(vif)?.currently_attached !== attached)
      db.update(vif, { currently_attached: attached })
  })
}

function nextDomid(db: PoolDb, hostRef: string): number {
  let max = 0
  for (const r of db.get(hostRef)!.resident_VMs as string[])
    max = Math.max(max, Number(db.get(r)?.domid ?? 0))
  return max + 1
}

/**
 * Makes a VM Running (or Paused) on `hostRef`: residency, domid, metrics, devices. `reboot`: the
 * domain is rebuilt in place (a reboot gives a new domid and start time, as in Xen).
 */
export function setRunning(
  db: PoolDb,
  vmRef: string,
  hostRef: string,
  paused = false,
  reboot = false
): void {
  const vm = db.require('VM', vmRef)
  const old = vm.resident_on as string
  if (old !== hostRef && db.has('host', old)) {
    db.removeFromSet(old, 'resident_VMs', vmRef)
    refreshHostMemory(db, old)
  }
  const wasLive = !reboot && (vm.power_state === 'Running' || vm.power_state === 'Paused')
  const domid = wasLive && old === hostRef ? vm.domid : nextDomid(db, hostRef)
  let guestMetrics = vm.guest_metrics as string
  const pv = db.guests.get(vmRef)?.behaviour !== 'no-pv'
  if (pv && !db.has('VM_guest_metrics', guestMetrics))
    guestMetrics = db.create('VM_guest_metrics', newVmGuestMetrics({}))
  db.update(vmRef, {
    power_state: paused ? 'Paused' : 'Running',
    resident_on: hostRef,
    scheduled_to_be_resident_on: NULL,
    domid,
    memory_target: vm.memory_dynamic_max,
    guest_metrics: guestMetrics,
  })
  db.addToSet(hostRef, 'resident_VMs', vmRef)
  if (db.has('VM_metrics', vm.metrics)) {
    const m = db.get(vm.metrics as string)!
    db.update(vm.metrics as string, {
      memory_actual: vm.memory_dynamic_max,
      VCPUs_number: vm.VCPUs_at_startup,
      start_time: wasLive ? m.start_time : new Date(),
      last_updated: new Date(),
      current_domain_type: vm.domain_type,
    })
  }
  setDevicesAttached(db, vmRef, true)
  refreshHostMemory(db, hostRef)
  refreshVm(db, vmRef)
}

function leaveHost(db: PoolDb, vmRef: string): void {
  const vm = db.get(vmRef)!
  const host = vm.resident_on as string
  if (db.has('host', host)) {
    db.removeFromSet(host, 'resident_VMs', vmRef)
    refreshHostMemory(db, host)
  }
  setDevicesAttached(db, vmRef, false)
  if (db.has('VM_metrics', vm.metrics)) {
    db.update(vm.metrics as string, { memory_actual: 0, VCPUs_number: 0, last_updated: new Date() })
  }
}

/** Makes a VM Halted (suspend image destroyed, guest metrics dropped). */
export function setHalted(db: PoolDb, vmRef: string): void {
  const vm = db.require('VM', vmRef)
  leaveHost(db, vmRef)
  if (db.has('VDI', vm.suspend_VDI)) destroyVdi(db, vm.suspend_VDI as string)
  if (db.has('VM_guest_metrics', vm.guest_metrics)) db.destroy(vm.guest_metrics as string)
  db.update(vmRef, {
    power_state: 'Halted',
    resident_on: NULL,
    domid: -1,
    memory_target: 0,
    suspend_VDI: NULL,
    guest_metrics: NULL,
  })
  refreshVm(db, vmRef)
}

/** Makes a VM Suspended: its memory goes to a suspend VDI on suspend_SR / the default SR. */
export function setSuspended(db: PoolDb, vmRef: string, poolRef: string): void {
  const vm = db.require('VM', vmRef)
  leaveHost(db, vmRef)
  const pool = db.get(poolRef)!
  const sr = [vm.suspend_SR, pool.suspend_image_SR, pool.default_SR].find((s) =>
    db.has('SR', s)
  ) as string | undefined
  let suspendVdi = NULL
  if (sr !== undefined) {
    suspendVdi = createVdi(db, {
      sr,
      content: DiskContent.generated(
        `suspend/${vm.uuid}/${Date.now()}`,
        Number(vm.memory_static_max),
        0.25
      ),
      record: { name_label: `Suspend image for ${vm.name_label}`, type: 'suspend' },
    })
  }
  db.update(vmRef, {
    power_state: 'Suspended',
    resident_on: NULL,
    domid: -1,
    suspend_VDI: suspendVdi,
  })
  refreshVm(db, vmRef)
}
