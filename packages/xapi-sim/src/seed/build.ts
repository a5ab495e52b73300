import { DiskContent } from '../disk/content.js'
import { PoolDb, type SimRecord } from '../model/db.js'
import {
  newHost,
  newHostMetrics,
  newNetwork,
  newPbd,
  newPif,
  newPool,
  newSr,
  newVbd,
  newVdi,
  newVif,
  newVm,
  newVmAppliance,
  newVmGuestMetrics,
  newVmMetrics,
  randomMac,
} from '../model/records.js'
import { refreshSr } from '../model/storage.js'
import { copyVm } from '../model/vm-copy.js'
import { hostFreeMemory, refreshHostMemory, refreshVm } from '../model/vm-state.js'
import type { HostRuntime, PoolRuntime } from '../state.js'
import type { PoolSeed } from './schema.js'

const MiB = 2 ** 20
const GiB = 2 ** 30
const DOM0_MEMORY = 2 * GiB
const NULL = 'OpaqueRef:NULL'

function push(r: SimRecord, field: string, v: string): void {
  ;(r[field] as string[]).push(v)
}

/**
 * Materialises one pool of a seed. Host URLs are filled in once their servers listen.
 * Objects are linked directly (no per-link events) so that large seeds build fast.
 */
export function buildPool(seed: PoolSeed): PoolRuntime {
  const db = new PoolDb(seed.name)
  const poolRef = db.create(
    'pool',
    newPool({ name_label: seed.name, other_config: { ...seed.otherConfig } })
  )
  const runtime: PoolRuntime = { name: seed.name, ref: poolRef, db, hosts: [] }
  const hostRefs = new Map<string, string>()
  const domids = new Map<string, number>()

  for (const h of seed.hosts) {
    const metrics = db.create(
      'host_metrics',
      newHostMetrics({ memory_total: (h.memoryGiB ?? 64) * GiB, memory_free: 0 })
    )
    const ref = db.create(
      'host',
      newHost({
        name_label: h.name,
        hostname: h.name,
        address: '127.0.0.1',
        enabled: h.enabled ?? true,
        metrics,
        memory_overhead: 512 * MiB,
        cpu_info: {
          cpu_count: String(h.cpus ?? 16),
          socket_count: '1',
          vendor: 'GenuineIntel',
          speed: '2400.000',
          modelname: 'Simulated CPU',
        },
      })
    )
    const host = db.get(ref)!
    host.software_version = { ...host.software_version, hostname: h.name }
    const dom0Metrics = db.create(
      'VM_metrics',
      newVmMetrics({ memory_actual: DOM0_MEMORY, VCPUs_number: 4, start_time: new Date() })
    )
    const dom0 = db.create(
      'VM',
      newVm({
        name_label: `Control domain on host: ${h.name}`,
        name_description: 'The domain which manages physical devices and manages other domains',
        power_state: 'Running',
        is_control_domain: true,
        resident_on: ref,
        domid: 0,
        memory_static_max: DOM0_MEMORY,
        memory_dynamic_max: DOM0_MEMORY,
        memory_dynamic_min: DOM0_MEMORY,
        memory_static_min: DOM0_MEMORY,
        memory_target: DOM0_MEMORY,
        memory_overhead: 0,
        VCPUs_max: 4,
        VCPUs_at_startup: 4,
        metrics: dom0Metrics,
        domain_type: 'pv',
        HVM_boot_policy: '',
        HVM_boot_params: {},
      })
    )
    host.control_domain = dom0
    push(host, 'resident_VMs', dom0)
    hostRefs.set(h.name, ref)
    domids.set(ref, 1)
    runtime.hosts.push({
      name: h.name,
      ref,
      uuid: host.uuid as string,
      url: '',
      port: 0,
      pool: runtime,
    } satisfies HostRuntime)
  }
  const pool = db.get(poolRef)!
  pool.master = runtime.hosts[0]!.ref

  const networks = new Map<string, string>()
  seed.networks.forEach((n, i) => {
    const ref = db.create(
      'network',
      newNetwork({ name_label: n.name, bridge: n.bridge ?? `xenbr${i}` })
    )
    networks.set(n.name, ref)
    const net = db.get(ref)!
    for (const h of runtime.hosts) {
      const pif = db.create(
        'PIF',
        newPif({
          device: `eth${i}`,
          network: ref,
          host: h.ref,
          MAC: randomMac(),
          management: i === 0,
          IP: i === 0 ? '127.0.0.1' : '',
          ip_configuration_mode: i === 0 ? 'Static' : 'None',
        })
      )
      push(net, 'PIFs', pif)
      push(db.get(h.ref)!, 'PIFs', pif)
    }
  })

  const srs = new Map<string, string>()
  for (const s of seed.srs) {
    const ref = db.create(
      'SR',
      newSr({
        name_label: s.name,
        type: s.type ?? (s.shared ? 'nfs' : 'ext'),
        shared: s.shared ?? false,
        content_type: s.contentType ?? 'user',
        physical_size: Math.round((s.sizeGiB ?? 1024) * GiB),
      })
    )
    srs.set(s.name, ref)
    const sr = db.get(ref)!
    const plugged = s.shared
      ? runtime.hosts
      : [runtime.hosts.find((h) => h.name === s.host) ?? runtime.hosts[0]!]
    for (const h of plugged) {
      const pbd = db.create(
        'PBD',
        newPbd({
          host: h.ref,
          SR: ref,
          device_config: { location: `/var/run/sr-mount/${sr.uuid}` },
        })
      )
      push(sr, 'PBDs', pbd)
      push(db.get(h.ref)!, 'PBDs', pbd)
    }
    if (s.default)
      Object.assign(pool, { default_SR: ref, suspend_image_SR: ref, crash_dump_SR: ref })
  }
  const defaultSr =
    pool.default_SR !== NULL ? (pool.default_SR as string) : srs.values().next().value

  const appliances = new Map<string, string>()
  for (const a of seed.appliances ?? []) {
    appliances.set(
      a.name,
      db.create(
        'VM_appliance',
        newVmAppliance({ name_label: a.name, name_description: a.description ?? '' })
      )
    )
  }

  const freeMemory = new Map<string, number>()
  for (const h of runtime.hosts) freeMemory.set(h.ref, hostFreeMemory(db, h.ref))

  const snapshotsToMake: [string, string][] = []
  for (const v of seed.vms ?? []) {
    const mem = (v.memoryMiB ?? 1024) * MiB
    const state = v.template ? 'Halted' : (v.powerState ?? 'Halted')
    const live = state === 'Running' || state === 'Paused'
    let hostRef = NULL
    if (live) {
      hostRef =
        v.host !== undefined
          ? hostRefs.get(v.host)!
          : [...freeMemory].sort((x, y) => y[1] - x[1])[0]![0]
      freeMemory.set(hostRef, freeMemory.get(hostRef)! - mem)
    }
    const vcpus = v.vcpus ?? 1
    const now = new Date()
    const metrics = db.create(
      'VM_metrics',
      newVmMetrics({
        memory_actual: live ? mem : 0,
        VCPUs_number: live ? vcpus : 0,
        start_time: live ? now : new Date(0),
        state: [],
        current_domain_type: live ? 'hvm' : 'unspecified',
      })
    )
    const pv = v.behaviour !== 'no-pv' && !v.template
    const guestMetrics =
      pv && state !== 'Halted' ? db.create('VM_guest_metrics', newVmGuestMetrics({})) : NULL
    let domid = -1
    if (live) {
      domid = domids.get(hostRef)!
      domids.set(hostRef, domid + 1)
    }
    const ref = db.create(
      'VM',
      newVm({
        name_label: v.name,
        name_description: v.description ?? '',
        power_state: state,
        is_a_template: v.template ?? false,
        resident_on: hostRef,
        domid,
        memory_static_max: mem,
        memory_dynamic_max: mem,
        memory_dynamic_min: mem,
        memory_static_min: Math.min(mem, 512 * MiB),
        memory_target: live ? mem : 0,
        VCPUs_max: vcpus,
        VCPUs_at_startup: vcpus,
        other_config: { ...(v.template ? { default_template: 'false' } : {}), ...v.otherConfig },
        tags: [...(v.tags ?? [])],
        order: v.order ?? 0,
        start_delay: v.startDelay ?? 0,
        shutdown_delay: v.shutdownDelay ?? 0,
        blocked_operations: { ...v.blockedOperations },
        appliance: v.appliance !== undefined ? appliances.get(v.appliance)! : NULL,
        metrics,
        guest_metrics: guestMetrics,
        user_version: 1,
        ...(state === 'Suspended' || live ? { last_booted_record: '' } : {}),
      })
    )
    const vm = db.get(ref)!
    if (live) push(db.get(hostRef)!, 'resident_VMs', ref)
    if (v.appliance !== undefined) push(db.get(appliances.get(v.appliance)!)!, 'VMs', ref)
    if (v.behaviour && v.behaviour !== 'normal')
      db.guests.set(ref, { behaviour: v.behaviour, cleanShutdownS: v.cleanShutdownS })

    const disks = v.disks ?? []
    disks.forEach((d, i) => {
      const sr = d.sr !== undefined ? srs.get(d.sr)! : defaultSr!
      const content = DiskContent.generated(
        `${seed.name}/${v.name}/${i}`,
        Math.round(d.sizeMiB * MiB),
        d.allocated ?? 0.5
      )
      const vdi = db.create(
        'VDI',
        newVdi({
          name_label: d.name ?? (i === 0 ? `${v.name} system disk` : `${v.name} disk ${i}`),
          name_description: i === 0 ? 'Created by template provisioner' : '',
          SR: sr,
          virtual_size: content.virtualSize,
          physical_utilisation: content.physicalUtilisation(),
          type: 'user',
        })
      )
      db.vdiContent.set(vdi, content)
      const vdiRec = db.get(vdi)!
      vdiRec.location = vdiRec.uuid
      push(db.get(sr)!, 'VDIs', vdi)
      const vbd = db.create(
        'VBD',
        newVbd({
          VM: ref,
          VDI: vdi,
          userdevice: String(i),
          device: live ? `xvd${String.fromCharCode(97 + i)}` : '',
          bootable: i === 0,
          currently_attached: live,
          allowed_operations: live ? ['attach', 'unplug', 'unplug_force'] : ['attach'],
        })
      )
      push(vm, 'VBDs', vbd)
      push(vdiRec, 'VBDs', vbd)
    })
    const cd = db.create(
      'VBD',
      newVbd({
        VM: ref,
        VDI: NULL,
        userdevice: '3',
        type: 'CD',
        mode: 'RO',
        empty: true,
        bootable: false,
        currently_attached: live,
        device: live ? 'xvdd' : '',
      })
    )
    push(vm, 'VBDs', cd)
    if (state === 'Suspended') {
      const content = DiskContent.generated(`${seed.name}/${v.name}/suspend`, mem, 0.25)
      const sr = defaultSr!
      const vdi = db.create(
        'VDI',
        newVdi({
          name_label: `Suspend image for ${v.name}`,
          SR: sr,
          type: 'suspend',
          virtual_size: content.virtualSize,
          physical_utilisation: content.physicalUtilisation(),
        })
      )
      db.vdiContent.set(vdi, content)
      push(db.get(sr)!, 'VDIs', vdi)
      vm.suspend_VDI = vdi
      vm.suspend_SR = sr
    }
    ;(v.networks ?? []).forEach((n, i) => {
      const net = networks.get(n)!
      const vif = db.create(
        'VIF',
        newVif({
          device: String(i),
          network: net,
          VM: ref,
          MAC: randomMac(),
          currently_attached: live,
        })
      )
      push(vm, 'VIFs', vif)
      push(db.get(net)!, 'VIFs', vif)
    })
    for (const s of v.snapshots ?? []) snapshotsToMake.push([ref, s])
  }

  for (const [vm, name] of snapshotsToMake) copyVm(db, vm, { name, snapshot: true })
  for (const sr of srs.values()) refreshSr(db, sr)
  for (const ref of db.all('VM').keys()) refreshVm(db, ref)
  for (const h of runtime.hosts) refreshHostMemory(db, h.ref)
  return runtime
}
