import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { startSimulator, type Simulator } from '../src/index.js'
import { failure, login, ok, runAsync } from './rpc.js'

let sim: Simulator
let a: string
let b: string
let sa: string
let sb: string

async function open(seed: Parameters<typeof startSimulator>[0]) {
  sim = await startSimulator(seed)
  a = sim.pools[0]!.masterUrl
  b = sim.pools[1]!.masterUrl
  sa = await login(a, sim.user, sim.password)
  sb = await login(b, sim.user, sim.password)
}
afterEach(() => sim.close())

/** The vdi_map/vif_map a client builds: same-name SRs and networks in pool B. */
async function maps(vm: string) {
  const srB = Object.fromEntries(
    Object.entries(await ok(b, 'SR.get_all_records', sb)).map(([r, x]: [string, any]) => [
      x.name_label,
      r,
    ])
  )
  const netB = Object.fromEntries(
    Object.entries(await ok(b, 'network.get_all_records', sb)).map(([r, x]: [string, any]) => [
      x.name_label,
      r,
    ])
  )
  const vdiMap: Record<string, string> = {}
  for (const vbd of await ok(a, 'VM.get_VBDs', sa, vm)) {
    const vdi = await ok(a, 'VBD.get_VDI', sa, vbd)
    if (vdi === 'OpaqueRef:NULL') continue
    vdiMap[vdi] = srB[await ok(a, 'SR.get_name_label', sa, await ok(a, 'VDI.get_SR', sa, vdi))]
  }
  const vifMap: Record<string, string> = {}
  for (const vif of await ok(a, 'VM.get_VIFs', sa, vm)) {
    vifMap[vif] =
      netB[await ok(a, 'network.get_name_label', sa, await ok(a, 'VIF.get_network', sa, vif))]
  }
  return { vdiMap, vifMap }
}

describe('cross-pool migration (migrate_receive + assert_can_migrate + migrate_send)', () => {
  beforeEach(() => open({ seed: 'two-pools', timeScale: 0.001 }))

  it('moves a running VM with its disks (content copied) to pool B and removes it from pool A', async () => {
    const [vm] = await ok(a, 'VM.get_by_name_label', sa, 'web-01')
    const uuid = await ok(a, 'VM.get_uuid', sa, vm)
    const destHost = sim.pools[1]!.hosts[1]!.ref
    const [net] = await ok(b, 'network.get_all', sb)
    const dest = await ok(b, 'host.migrate_receive', sb, destHost, net, {})
    expect(Object.keys(dest).sort()).toEqual(['SM', 'host', 'master', 'session_id', 'xenops'])
    expect(dest.host).toBe(destHost)
    const { vdiMap, vifMap } = await maps(vm)
    const dbA = sim.db.pool('pool-a')
    const hashes = Object.keys(vdiMap).map((v) => dbA.vdiContent.get(v)!.hash())
    await ok(a, 'VM.assert_can_migrate', sa, vm, dest, true, vdiMap, vifMap, {}, {})
    const t = await runAsync(a, sa, 'VM.migrate_send', vm, dest, true, vdiMap, vifMap, {}, {})
    expect(t.status).toBe('success')
    const newVm = /OpaqueRef:[0-9a-f-]+/.exec(t.result)![0]
    const r = await ok(b, 'VM.get_record', sb, newVm)
    expect(r).toMatchObject({
      uuid,
      name_label: 'web-01',
      power_state: 'Running',
      resident_on: destHost,
    })
    expect(await ok(b, 'host.get_resident_VMs', sb, destHost)).toContain(newVm)
    const dbB = sim.db.pool('pool-b')
    const newDisks = (r.VBDs as string[])
      .map((x) => dbB.get(x)!.VDI as string)
      .filter((x) => dbB.has('VDI', x))
    expect(newDisks.map((v) => dbB.vdiContent.get(v)!.hash()).sort()).toEqual(hashes.sort())
    for (const v of newDisks) expect(Object.values(vdiMap)).toContain(dbB.get(v)!.SR)
    for (const vif of r.VIFs)
      expect(Object.values(vifMap)).toContain(await ok(b, 'VIF.get_network', sb, vif))
    expect(await failure(a, 'VM.get_record', sa, vm)).toEqual(['HANDLE_INVALID', 'VM', vm])
    for (const v of Object.keys(vdiMap)) expect(dbA.has('VDI', v)).toBe(false)
    // the snapshot went along
    expect(r.snapshots).toHaveLength(1)
    expect(await ok(b, 'VM.get_snapshot_of', sb, r.snapshots[0])).toBe(newVm)
  })

  it('VDI_NOT_IN_MAP / VIF_NOT_IN_MAP / HANDLE_INVALID for an SR of the wrong pool', async () => {
    const [vm] = await ok(a, 'VM.get_by_name_label', sa, 'build-01')
    const [net] = await ok(b, 'network.get_all', sb)
    const dest = await ok(b, 'host.migrate_receive', sb, sim.pools[1]!.hosts[0]!.ref, net, {})
    const { vdiMap, vifMap } = await maps(vm)
    const [vdi] = Object.keys(vdiMap)
    expect(
      await failure(a, 'VM.assert_can_migrate', sa, vm, dest, true, {}, vifMap, {}, {})
    ).toEqual(['VDI_NOT_IN_MAP', vdi])
    const [vif] = Object.keys(vifMap)
    expect(
      await failure(a, 'VM.assert_can_migrate', sa, vm, dest, true, vdiMap, {}, {}, {})
    ).toEqual(['VIF_NOT_IN_MAP', vif])
    const srA = await ok(a, 'VDI.get_SR', sa, vdi)
    expect(
      await failure(a, 'VM.assert_can_migrate', sa, vm, dest, true, { [vdi!]: srA }, vifMap, {}, {})
    ).toEqual(['HANDLE_INVALID', 'SR', srA])
  })

  it('a halted VM migrates halted; options copy=true keeps the source', async () => {
    const [vm] = await ok(a, 'VM.get_by_name_label', sa, 'build-01')
    const [net] = await ok(b, 'network.get_all', sb)
    const dest = await ok(b, 'host.migrate_receive', sb, sim.pools[1]!.hosts[0]!.ref, net, {})
    const { vdiMap, vifMap } = await maps(vm)
    const newVm = await ok(a, 'VM.migrate_send', sa, vm, dest, false, vdiMap, vifMap, {
      copy: 'true',
    })
    expect(await ok(b, 'VM.get_power_state', sb, newVm)).toBe('Halted')
    expect(await ok(a, 'VM.get_power_state', sa, vm)).toBe('Halted')
  })
})

describe('storage migration limits', () => {
  it('TOO_MANY_STORAGE_MIGRATES beyond 3 concurrent from one host', async () => {
    const vms = ['m1', 'm2', 'm3', 'm4'].map((name) => ({
      name,
      powerState: 'Running' as const,
      host: 'src1',
      memoryMiB: 256,
      disks: [{ sizeMiB: 1024 }],
      networks: ['net'],
    }))
    const pool = (name: string, host: string, withVms: boolean) => ({
      name,
      hosts: [{ name: host, memoryGiB: 64 }],
      srs: [{ name: 'nfs', shared: true, default: true }],
      networks: [{ name: 'net' }],
      vms: withVms ? vms : [],
    })
    await open({
      timeScale: 0.5,
      seed: { pools: [pool('src', 'src1', true), pool('dst', 'dst1', false)] },
    })
    const [net] = await ok(b, 'network.get_all', sb)
    const dest = await ok(b, 'host.migrate_receive', sb, sim.pools[1]!.hosts[0]!.ref, net, {})
    const tasks: string[] = []
    for (const name of ['m1', 'm2', 'm3', 'm4']) {
      const [vm] = await ok(a, 'VM.get_by_name_label', sa, name)
      const { vdiMap, vifMap } = await maps(vm)
      tasks.push(await ok(a, 'Async.VM.migrate_send', sa, vm, dest, true, vdiMap, vifMap, {}, {}))
    }
    const fourth = await (await import('./rpc.js')).waitTask(a, sa, tasks[3]!)
    expect(fourth.error_info).toEqual(['TOO_MANY_STORAGE_MIGRATES', '3'])
    for (const t of tasks.slice(0, 3)) {
      expect(await ok(a, 'task.get_status', sa, t)).toBe('pending')
      await ok(a, 'task.cancel', sa, t)
    }
  })
})
