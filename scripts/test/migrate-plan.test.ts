import { describe, expect, it } from 'vitest'
import type { SelectorArgs } from '../src/lib/selectors.js'
import { buildPlan, type PlanOptions } from '../src/ops/migrate/plan.js'
import { MIGRATE_MARKER, type PoolInventory } from '../src/ops/migrate/records.js'

type VmSpec = {
  name: string
  power?: string
  disks?: Array<{ size: number; used: number }>
  networks?: string[]
  tags?: string[]
  otherConfig?: Record<string, string>
}

/** A pool inventory from a compact description; refs are `<prefix>:<class>:<n>`. */
function pool(
  prefix: string,
  spec: {
    srs: Array<{ name: string; size: number; used?: number }>
    networks: string[]
    vms: VmSpec[]
  }
): PoolInventory {
  let n = 0
  const ref = (cls: string) => `OpaqueRef:${prefix}-${cls}-${++n}`
  const srs = new Map(
    spec.srs.map((sr) => [
      ref('SR'),
      {
        uuid: `${prefix}-sr-${sr.name}`,
        name_label: sr.name,
        physical_size: sr.size,
        physical_utilisation: sr.used ?? 0,
      },
    ])
  )
  const networks = new Map(
    spec.networks.map((name) => [ref('net'), { uuid: `${prefix}-net-${name}`, name_label: name }])
  )
  const netByName = new Map([...networks].map(([r, net]) => [net.name_label, r]))
  const host = ref('host')
  const srRef = [...srs.keys()][0]!
  const vms = new Map()
  const vbds = new Map()
  const vdis = new Map()
  const vifs = new Map()
  for (const vm of spec.vms) {
    const vmRef = ref('VM')
    const vbdRefs = (vm.disks ?? []).map((d, i) => {
      const vdiRef = ref('VDI')
      vdis.set(vdiRef, {
        uuid: `${vmRef}-vdi-${i}`,
        name_label: '',
        SR: srRef,
        virtual_size: d.size,
        physical_utilisation: d.used,
      })
      const vbdRef = ref('VBD')
      vbds.set(vbdRef, {
        uuid: `${vmRef}-vbd-${i}`,
        VM: vmRef,
        VDI: vdiRef,
        type: 'Disk',
        userdevice: String(i),
      })
      return vbdRef
    })
    const vifRefs = (vm.networks ?? []).map((net, i) => {
      const vifRef = ref('VIF')
      vifs.set(vifRef, {
        uuid: `${vmRef}-vif-${i}`,
        device: String(i),
        network: netByName.get(net)!,
        VM: vmRef,
        MAC: '',
        MTU: 1500,
      })
      return vifRef
    })
    vms.set(vmRef, {
      uuid: `${prefix}-uuid-${vm.name}`,
      name_label: vm.name,
      power_state: vm.power ?? 'Halted',
      is_a_template: false,
      is_a_snapshot: false,
      is_control_domain: false,
      resident_on: vm.power === 'Running' ? host : 'OpaqueRef:NULL',
      tags: vm.tags ?? [],
      other_config: vm.otherConfig ?? {},
      VBDs: vbdRefs,
      VIFs: vifRefs,
    })
  }
  return {
    poolRef: ref('pool'),
    pool: { uuid: `${prefix}-pool`, name_label: prefix, master: host, default_SR: srRef },
    hosts: new Map([[host, { uuid: `${prefix}-host`, name_label: 'h', enabled: true }]]),
    vms,
    vbds,
    vdis,
    srs,
    vifs,
    networks,
    pifs: new Map(),
  }
}

const select = (vm: string[] = [], extra: Partial<SelectorArgs> = {}): SelectorArgs => ({
  vm,
  tag: [],
  all: false,
  exclude: [],
  ...extra,
})
const options = (extra: Partial<PlanOptions> = {}): PlanOptions => ({
  selectors: select(['web']),
  networkMap: [],
  method: 'auto',
  running: 'shutdown',
  ...extra,
})
const GiB = 2 ** 30

const source = () =>
  pool('a', {
    srs: [{ name: 'shared', size: 100 * GiB }],
    networks: ['lan', 'dmz'],
    vms: [
      {
        name: 'web',
        power: 'Running',
        disks: [{ size: 8 * GiB, used: 2 * GiB }],
        networks: ['lan', 'dmz'],
      },
      { name: 'db', disks: [{ size: 4 * GiB, used: 4 * GiB }], networks: ['lan'] },
      { name: 'old', tags: ['migrated-to:b/x'], networks: ['lan'] },
    ],
  })
const dest = (extra: Partial<{ vms: VmSpec[]; networks: string[]; free: number }> = {}) =>
  pool('b', {
    srs: [
      { name: 'shared', size: 10 * GiB, used: 10 * GiB - (extra.free ?? 9 * GiB) },
      { name: 'fast', size: 100 * GiB },
    ],
    networks: extra.networks ?? ['lan', 'dmz', 'prod'],
    vms: extra.vms ?? [],
  })

describe('buildPlan', () => {
  it('maps disks to the default SR and VIFs to networks of the same name', () => {
    const plan = buildPlan(source(), dest(), options())
    expect(plan.errors).toEqual([])
    expect(plan.sr.name).toBe('shared')
    const [web] = plan.vms
    expect(web).toMatchObject({ name: 'web', method: 'auto', wasRunning: true })
    expect(web!.vifs.map((v) => `${v.device}:${v.sourceNetworkName}->${v.networkName}`)).toEqual([
      '0:lan->lan',
      '1:dmz->dmz',
    ])
    expect(web!.expect.disks).toEqual([{ userdevice: '0', virtualSize: 8 * GiB, sr: plan.sr.ref }])
    expect(plan.space).toEqual([
      expect.objectContaining({ name: 'shared', requiredBytes: 2 * GiB, freeBytes: 9 * GiB }),
    ])
  })

  it('takes --sr by name or uuid and --network-map by name or uuid', () => {
    const plan = buildPlan(
      source(),
      dest(),
      options({ sr: 'b-sr-fast', networkMap: ['lan=prod', 'a-net-dmz=b-net-lan'] })
    )
    expect(plan.errors).toEqual([])
    expect(plan.sr.name).toBe('fast')
    expect(plan.vms[0]!.vifs.map((v) => v.networkName)).toEqual(['prod', 'lan'])
  })

  it('reports every mapping problem', () => {
    const plan = buildPlan(
      source(),
      dest({ networks: ['lan'] }),
      options({ sr: 'nope', networkMap: ['bad', 'lan=nowhere'] })
    )
    expect(plan.errors).toEqual([
      '--sr "nope": no such SR in the destination pool',
      '--network-map "bad": expected SRC=DST (names or uuids)',
      '--network-map "lan=nowhere": no destination network "nowhere"',
      'VM web: VIF 1 is on network "dmz", which the destination pool does not have: add --network-map "dmz=<destination network>"',
    ])
  })

  it('checks the free space of the destination SR', () => {
    const plan = buildPlan(source(), dest({ free: 1 * GiB }), options())
    expect(plan.errors).toEqual([
      'destination SR shared: the copies need 2.0 GiB, it has 1.0 GiB free',
    ])
  })

  it('refuses a name used in the destination, unless it is our own copy of that VM', () => {
    const clash = buildPlan(source(), dest({ vms: [{ name: 'web' }] }), options())
    expect(clash.errors).toEqual(['name clash: the destination pool already has a VM named "web"'])
    const ours = buildPlan(
      source(),
      dest({ vms: [{ name: 'web', otherConfig: { [MIGRATE_MARKER]: 'a-uuid-web' } }] }),
      options()
    )
    expect(ours.errors).toEqual([])
  })

  it('skips migrated VMs and running VMs that must be streamed with --running skip', () => {
    const plan = buildPlan(
      source(),
      dest(),
      options({ selectors: select([], { all: true }), method: 'stream', running: 'skip' })
    )
    expect(plan.vms.map((vm) => vm.name)).toEqual(['db'])
    expect(plan.skipped.map((s) => `${s.name}: ${s.reason}`)).toEqual([
      'web: running: a stream copy needs it halted (--running skip)',
      'old: already migrated (tag migrated-to:b/x)',
    ])
  })

  it('makes an unknown --vm a plan error', () => {
    const plan = buildPlan(source(), dest(), options({ selectors: select(['web', 'ghost']) }))
    expect(plan.errors).toEqual([
      '--vm "ghost" matched no VM of the source pool (templates, snapshots and control domains are never selected)',
    ])
  })
})
