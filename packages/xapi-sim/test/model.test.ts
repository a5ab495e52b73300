import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startSimulator, type Simulator } from '../src/index.js'
import { failure, jsonCall, login, ok, runAsync, waitTask } from './rpc.js'

let sim: Simulator
let url: string
let s: string

beforeAll(async () => {
  sim = await startSimulator({ seed: 'small', timeScale: 0.001 })
  url = sim.pools[0]!.masterUrl
  s = await login(url, sim.user, sim.password)
})
afterAll(() => sim.close())

async function vmByName(name: string): Promise<string> {
  const refs = await ok(url, 'VM.get_by_name_label', s, name)
  expect(refs).toHaveLength(1)
  return refs[0]
}

describe('seeded model', () => {
  it('has the small seed: 2 hosts with dom0s, a default shared SR, 2 networks, user VMs in every power state', async () => {
    const hosts = await ok(url, 'host.get_all_records', s)
    expect(Object.keys(hosts)).toHaveLength(2)
    const vms = Object.values(await ok(url, 'VM.get_all_records', s)) as any[]
    const user = vms.filter((v) => !v.is_a_template && !v.is_control_domain && !v.is_a_snapshot)
    expect(new Set(user.map((v) => v.power_state))).toEqual(
      new Set(['Running', 'Halted', 'Suspended', 'Paused'])
    )
    expect(vms.filter((v) => v.is_control_domain)).toHaveLength(2)
    expect(vms.filter((v) => v.is_a_template)).toHaveLength(1)
    expect(vms.filter((v) => v.is_a_snapshot)).toHaveLength(1)
    const [pool] = await ok(url, 'pool.get_all', s)
    const sr = await ok(url, 'pool.get_default_SR', s, pool)
    expect(await ok(url, 'SR.get_shared', s, sr)).toBe(true)
    expect(await ok(url, 'network.get_all', s)).toHaveLength(2)
    expect(await ok(url, 'pool.get_master', s, pool)).toBe(sim.pools[0]!.hosts[0]!.ref)
  })

  it('records carry the datamodel key sets and consistent links', async () => {
    const vm = await vmByName('web-01')
    const r = await ok(url, 'VM.get_record', s, vm)
    for (const k of [
      'uuid',
      'power_state',
      'resident_on',
      'is_a_template',
      'is_a_snapshot',
      'snapshot_of',
      'snapshots',
      'is_control_domain',
      'other_config',
      'tags',
      'order',
      'start_delay',
      'shutdown_delay',
      'appliance',
      'memory_static_max',
      'memory_dynamic_min',
      'VCPUs_max',
      'VCPUs_at_startup',
      'VBDs',
      'VIFs',
      'allowed_operations',
      'current_operations',
      'blocked_operations',
      'metrics',
      'guest_metrics',
      'domain_type',
      'HVM_boot_policy',
      'platform',
      'NVRAM',
    ])
      expect(r).toHaveProperty(k)
    const host = await ok(url, 'host.get_record', s, r.resident_on)
    expect(host.resident_VMs).toContain(vm)
    // XML-RPC ints are untyped (strings), as xapi sends them
    expect(Number(await ok(url, 'host_metrics.get_memory_free', s, host.metrics))).toBeGreaterThan(
      0
    )
    const vbds = await Promise.all(r.VBDs.map((b: string) => ok(url, 'VBD.get_record', s, b)))
    const disk = vbds.find((b) => b.type === 'Disk')!
    const vdi = await ok(url, 'VDI.get_record', s, disk.VDI)
    expect(vdi.VBDs).toContain(r.VBDs[vbds.indexOf(disk)])
    expect(vdi.virtual_size).toBe(String(32 * 2 ** 20))
    expect(Number(vdi.physical_utilisation)).toBeGreaterThan(0)
    expect(await ok(url, 'SR.get_VDIs', s, vdi.SR)).toContain(disk.VDI)
    const vif = await ok(url, 'VIF.get_record', s, r.VIFs[0])
    expect(vif.MAC).toMatch(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/)
    expect(await ok(url, 'network.get_VIFs', s, vif.network)).toContain(r.VIFs[0])
    expect(await ok(url, 'VM_metrics.get_memory_actual', s, r.metrics)).toBe(r.memory_static_max)
    expect(sim.db.pool('pool-a').vdiContent.get(disk.VDI)?.virtualSize).toBe(
      Number(vdi.virtual_size)
    )
  })

  it('generic getters, setters, maps and tags', async () => {
    const vm = await vmByName('build-01')
    expect(await ok(url, 'VM.get_uuid', s, vm)).toMatch(/^[0-9a-f-]{36}$/)
    expect(await ok(url, 'VM.get_by_uuid', s, await ok(url, 'VM.get_uuid', s, vm))).toBe(vm)
    await ok(url, 'VM.set_name_description', s, vm, 'built nightly')
    await ok(url, 'VM.set_order', s, vm, '5') // xen-api sends ints as strings
    await ok(url, 'VM.add_to_other_config', s, vm, 'auto_poweroff', 'false')
    expect(await failure(url, 'VM.add_to_other_config', s, vm, 'auto_poweroff', 'true')).toEqual(
      expect.arrayContaining(['MAP_DUPLICATE_KEY'])
    )
    await ok(url, 'VM.add_tags', s, vm, 'nightly')
    await ok(url, 'VM.add_tags', s, vm, 'nightly')
    const r = await ok(url, 'VM.get_record', s, vm)
    expect(r.name_description).toBe('built nightly')
    expect(r.order).toBe('5')
    expect(r.other_config.auto_poweroff).toBe('false')
    expect(r.tags).toEqual(['nightly'])
    await ok(url, 'VM.remove_from_other_config', s, vm, 'auto_poweroff')
    await ok(url, 'VM.remove_tags', s, vm, 'nightly')
    expect((await ok(url, 'VM.get_other_config', s, vm)).auto_poweroff).toBeUndefined()
    expect(await ok(url, 'VM.get_tags', s, vm)).toEqual([])
    expect(await failure(url, 'VM.set_power_state', s, vm, 'Running')).toEqual([
      'MESSAGE_METHOD_UNKNOWN',
      'VM.set_power_state',
    ])
  })

  it('pool/host API version calls used by XenAPI.py and xen-api', async () => {
    const [pool] = await ok(url, 'pool.get_all', s)
    const master = await ok(url, 'pool.get_master', s, pool)
    expect(await ok(url, 'host.get_API_version_major', s, master)).toBe('2')
    expect(await ok(url, 'host.get_API_version_minor', s, master)).toMatch(/^\d+$/)
    expect(Object.keys(await ok(url, 'pool.get_all_records', s))).toEqual([pool])
    expect(await ok(url, 'session.get_this_host', s, s)).toBe(master)
    const methods: string[] = (
      await jsonCall(url, { method: 'system.listMethods', params: [], id: 1 })
    ).json.result
    expect(methods).toEqual(
      expect.arrayContaining([
        'VM.get_all_records',
        'event.from',
        'event.inject',
        'VM.clean_shutdown',
        'task.get_all_records',
      ])
    )
  })
})

describe('more generated messages', () => {
  it('get_all_records_where with xapi expressions', async () => {
    const running = await ok(
      url,
      'VM.get_all_records_where',
      s,
      'field "power_state" = "Running" and field "is_control_domain" = "false"'
    )
    const names = Object.values(running)
      .map((r: any) => r.name_label)
      .sort()
    expect(names).toEqual(['db-01', 'web-01'])
    const notTpl = await ok(
      url,
      'VM.get_all_records_where',
      s,
      'not (field "is_a_template" = "true") or false'
    )
    expect(Object.values(notTpl).some((r: any) => r.is_a_template)).toBe(false)
    expect(Object.keys(await ok(url, 'host.get_all_records_where', s, 'true'))).toHaveLength(2)
    expect((await failure(url, 'VM.get_all_records_where', s, 'field power_state ='))[0]).toBe(
      'INTERNAL_ERROR'
    )
  })

  it('message.create / get_since / destroy', async () => {
    const since = new Date(Date.now() - 1000)
    const [pool] = await ok(url, 'pool.get_all', s)
    const uuid = await ok(url, 'pool.get_uuid', s, pool)
    const m = await ok(url, 'message.create', s, 'TEST', 3, 'Pool', uuid, 'hello')
    const got = await ok(url, 'message.get_since', s, since)
    expect(got[m]).toMatchObject({
      name: 'TEST',
      priority: '3',
      cls: 'Pool',
      obj_uuid: uuid,
      body: 'hello',
    })
    await ok(url, 'message.destroy', s, m)
    expect(await ok(url, 'message.get_all', s)).not.toContain(m)
  })

  it('network.create (next free xapiN bridge) and network.destroy (refused while in use)', async () => {
    const net = await ok(url, 'network.create', s, { name_label: 'lab', MTU: '9000' })
    expect(await ok(url, 'network.get_record', s, net)).toMatchObject({
      name_label: 'lab',
      MTU: '9000',
      bridge: 'xapi0',
      VIFs: [],
      PIFs: [],
    })
    expect(await failure(url, 'network.create', s, { name_label: 'x', bridge: 'xapi0' })).toEqual([
      'BRIDGE_NAME_EXISTS',
      'xapi0',
    ])
    // As xapi: an unattached VIF goes with the network; an attached one, or a PIF, blocks it.
    const halted = await vmByName('build-01')
    const vif = await ok(url, 'VIF.create', s, { VM: halted, network: net, device: '7' })
    await ok(url, 'network.destroy', s, net)
    expect(await ok(url, 'network.get_all', s)).not.toContain(net)
    expect(await ok(url, 'VM.get_VIFs', s, halted)).not.toContain(vif)
    const seen = new Set<string>()
    for (const seeded of await ok(url, 'network.get_all', s)) {
      const attached = (await ok(url, 'network.get_VIFs', s, seeded)).filter(
        (v: string) => sim.db.get(v)?.currently_attached === true
      )
      const pifs = await ok(url, 'network.get_PIFs', s, seeded)
      const refusal = await failure(url, 'network.destroy', s, seeded)
      if (attached.length > 0) expect(refusal).toEqual(['NETWORK_CONTAINS_VIF', ...attached])
      else expect(refusal).toEqual(['NETWORK_CONTAINS_PIF', ...pifs])
      seen.add(refusal[0]!)
    }
    expect([...seen].sort()).toEqual(['NETWORK_CONTAINS_PIF', 'NETWORK_CONTAINS_VIF'])
  })
})

describe('storage messages', () => {
  it('VDI.create, VBD.create/destroy, VDI.snapshot/clone/copy, allowed devices', async () => {
    const vm = await vmByName('build-01')
    const [pool] = await ok(url, 'pool.get_all', s)
    const sr = await ok(url, 'pool.get_default_SR', s, pool)
    const vdi = await ok(url, 'VDI.create', s, {
      SR: sr,
      virtual_size: String(4 * 2 ** 20),
      name_label: 'scratch',
      type: 'user',
      sharable: false,
      read_only: false,
      other_config: {},
    })
    expect(await ok(url, 'VDI.get_virtual_size', s, vdi)).toBe(String(4 * 2 ** 20))
    expect(await ok(url, 'SR.get_VDIs', s, sr)).toContain(vdi)
    const free = await ok(url, 'VM.get_allowed_VBD_devices', s, vm)
    expect(free).not.toContain('0')
    const vbd = await ok(url, 'VBD.create', s, {
      VM: vm,
      VDI: vdi,
      userdevice: free[0],
      bootable: false,
      mode: 'RW',
      type: 'Disk',
      empty: false,
      other_config: {},
    })
    expect(await ok(url, 'VM.get_VBDs', s, vm)).toContain(vbd)
    expect(await ok(url, 'VDI.get_VBDs', s, vdi)).toEqual([vbd])
    expect(
      await failure(url, 'VBD.create', s, { VM: vm, VDI: vdi, userdevice: free[0], empty: false })
    ).toEqual(['DEVICE_ALREADY_EXISTS', free[0]])
    const snap = await ok(url, 'VDI.snapshot', s, vdi, {})
    expect(await ok(url, 'VDI.get_snapshot_of', s, snap)).toBe(vdi)
    const copy = await ok(url, 'VDI.copy', s, vdi, sr)
    const db = sim.db.pool('pool-a')
    expect(db.vdiContent.get(copy)!.hash()).toBe(db.vdiContent.get(vdi)!.hash())
    expect(await ok(url, 'VDI.get_is_a_snapshot', s, await ok(url, 'VDI.clone', s, vdi, {}))).toBe(
      false
    )
    await ok(url, 'VBD.destroy', s, vbd)
    expect(await ok(url, 'VM.get_VBDs', s, vm)).not.toContain(vbd)
    expect(await ok(url, 'VM.get_allowed_VIF_devices', s, vm)).not.toContain('0')
  })
})

describe('tasks', () => {
  it('Async.* returns a task that ends success with an XML-RPC value fragment as result', async () => {
    const vm = await vmByName('build-01')
    const t = await runAsync(url, s, 'VM.clone', vm, 'build-01 clone')
    expect(t.name_label).toBe('Async.VM.clone')
    expect(t.status).toBe('success')
    expect(t.progress).toBe(1)
    expect(t.result).toMatch(/^<value>OpaqueRef:[0-9a-f-]{36}<\/value>$/)
    expect(t.resident_on).toBe(sim.pools[0]!.hosts[0]!.ref)
    expect(new Date(t.finished).getTime()).toBeGreaterThanOrEqual(new Date(t.created).getTime())
    const clone = /OpaqueRef:[0-9a-f-]+/.exec(t.result)![0]
    expect(await ok(url, 'VM.get_name_label', s, clone)).toBe('build-01 clone')
    const v = await runAsync(
      url,
      s,
      'VM.set_memory_limits',
      clone,
      2 ** 29,
      2 ** 30,
      2 ** 30,
      2 ** 30
    )
    expect(v.result).toBe('<value></value>')
    await ok(url, 'task.destroy', s, t.ref)
    expect(await failure(url, 'task.get_record', s, t.ref)).toEqual([
      'HANDLE_INVALID',
      'task',
      t.ref,
    ])
  })

  it('a failing Async call fails its task with error_info and progress 1', async () => {
    const vm = await vmByName('build-01')
    const t = await runAsync(url, s, 'VM.clean_shutdown', vm)
    expect(t.status).toBe('failure')
    expect(t.error_info).toEqual(['VM_BAD_POWER_STATE', vm, 'running', 'halted'])
    expect(t.progress).toBe(1)
    expect(t.type).toBe('<none/>')
  })

  it('a task shows allowed_operations [cancel] only while its worker is at cancellable work', async () => {
    const sim2 = await startSimulator({ seed: 'small', timeScale: 0.01 })
    try {
      const u = sim2.pools[0]!.masterUrl
      const s2 = await login(u, sim2.user, sim2.password)
      const [vm] = await ok(u, 'VM.get_by_name_label', s2, 'web-01')
      sim2.faults.stubbornVm('web-01', 'slow', { cleanShutdownS: 600 })
      const clean = await ok(u, 'Async.VM.clean_shutdown', s2, vm)
      await expect.poll(() => ok(u, 'task.get_allowed_operations', s2, clean)).toEqual(['cancel'])
      await ok(u, 'task.cancel', s2, clean)
      expect((await waitTask(u, s2, clean)).allowed_operations).toEqual([])
      // a hard shutdown's shutdown_delay is no cancellable point
      await ok(u, 'VM.set_shutdown_delay', s2, vm, 600)
      const hard = await ok(u, 'Async.VM.hard_shutdown', s2, vm)
      await expect.poll(() => ok(u, 'VM.get_power_state', s2, vm)).toBe('Halted')
      expect(await ok(u, 'task.get_status', s2, hard)).toBe('pending')
      expect(await ok(u, 'task.get_allowed_operations', s2, hard)).toEqual([])
    } finally {
      await sim2.close()
    }
  })

  it('task.destroy of a pending task only marks it; it goes when it finishes', async () => {
    const t = await ok(url, 'task.create', s, 'mine', '')
    expect(await ok(url, 'task.get_allowed_operations', s, t)).toEqual([])
    expect(await ok(url, 'task.get_type', s, t)).toBe('<none/>')
    await ok(url, 'task.destroy', s, t)
    expect(await ok(url, 'task.get_current_operations', s, t)).toEqual({ task: 'destroy' })
    const vm = await vmByName('build-01')
    const a = await ok(url, 'Async.VM.clone', s, vm, 'marked')
    await ok(url, 'task.destroy', s, a)
    await expect
      .poll(async () => (await failure(url, 'task.get_status', s, a).catch(() => ['alive']))[0])
      .toBe('HANDLE_INVALID')
  })

  it('task.cancel ends a cancellable task as cancelled (progress 1, error_info left empty)', async () => {
    const sim2 = await startSimulator({ seed: 'small', timeScale: 0.05 })
    try {
      const u = sim2.pools[0]!.masterUrl
      const s2 = await login(u, sim2.user, sim2.password)
      const [vm] = await ok(u, 'VM.get_by_name_label', s2, 'web-01')
      sim2.faults.stubbornVm('web-01', 'slow', { cleanShutdownS: 60 })
      const task = await ok(u, 'Async.VM.clean_shutdown', s2, vm)
      expect(await ok(u, 'VM.get_current_operations', s2, vm)).toEqual({ [task]: 'clean_shutdown' })
      expect(await ok(u, 'task.get_allowed_operations', s2, task)).toContain('cancel')
      await ok(u, 'task.cancel', s2, task)
      const t = await waitTask(u, s2, task)
      expect(t.status).toBe('cancelled')
      // TaskHelper.cancel sets status, progress, finished, allowed_operations, not error_info;
      // the cancel request stays in current_operations, keyed by the cancel call's task
      expect(t).toMatchObject({ error_info: [], progress: 1, allowed_operations: [] })
      expect(Object.values(t.current_operations)).toEqual(['cancel'])
      expect(Object.keys(t.current_operations)).not.toContain(task)
      expect(await ok(u, 'VM.get_power_state', s2, vm)).toBe('Running')
      expect(await ok(u, 'VM.get_current_operations', s2, vm)).toEqual({})
    } finally {
      await sim2.close()
    }
  })

  it('task.create and the setters (HTTP-handler style flows)', async () => {
    const t = await ok(url, 'task.create', s, 'upload', 'by hand')
    expect(await ok(url, 'task.get_status', s, t)).toBe('pending')
    await ok(url, 'task.set_progress', s, t, 0.25)
    expect(await ok(url, 'task.get_progress', s, t)).toBe(0.25)
    await ok(url, 'task.set_result', s, t, '<value>x</value>')
    await ok(url, 'task.set_status', s, t, 'success')
    const r = await ok(url, 'task.get_record', s, t)
    expect(r).toMatchObject({
      status: 'success',
      result: '<value>x</value>',
      name_label: 'upload',
      name_description: 'by hand',
    })
    const t2 = await ok(url, 'task.create', s, 'other', '')
    await ok(url, 'task.set_error_info', s, t2, ['VDI_IO_ERROR', 'disk gone'])
    await ok(url, 'task.set_status', s, t2, 'failure')
    expect(await ok(url, 'task.get_error_info', s, t2)).toEqual(['VDI_IO_ERROR', 'disk gone'])
  })

  it('finished tasks are garbage-collected after the (scaled) completed_task_timeout', async () => {
    const sim3 = await startSimulator({ seed: 'small', timeScale: 0.0001 }) // 3900 s → 390 ms
    try {
      const u = sim3.pools[0]!.masterUrl
      const s3 = await login(u, sim3.user, sim3.password)
      const t = await runAsync(
        u,
        s3,
        'VM.get_possible_hosts',
        (await ok(u, 'VM.get_by_name_label', s3, 'build-01'))[0]
      )
      expect(t.status).toBe('success')
      await expect
        .poll(() => ok(u, 'task.get_all', s3), { timeout: 5000, interval: 50 })
        .not.toContain(t.ref)
    } finally {
      await sim3.close()
    }
  })
})

describe('events', () => {
  it('"" gives one add event for every matching object; later calls give coalesced changes', async () => {
    const first = await ok(url, 'event.from', s, ['vm'], '', 1)
    const all = Object.keys(await ok(url, 'VM.get_all_records', s)).sort()
    // as xapi's from_inner: an object created after the token yields an `add` only, no `mod`
    const adds = first.events.filter((e: any) => e.operation === 'add')
    expect(adds.map((e: any) => e.ref).sort()).toEqual(all)
    expect(first.events).toHaveLength(all.length)
    expect(first.events.every((e: any) => e.class === 'vm' && e.timestamp === '0.0')).toBe(true)
    expect(first.events.indexOf(adds.at(-1))).toBe(adds.length - 1) // adds come first
    const vm = await vmByName('cache-01')
    await ok(url, 'VM.set_name_description', s, vm, 'one')
    await ok(url, 'VM.set_name_description', s, vm, 'two')
    const next = await ok(url, 'event.from', s, ['vm'], first.token, 1)
    expect(next.events).toHaveLength(1)
    expect(next.events[0]).toMatchObject({
      class: 'vm',
      operation: 'mod',
      ref: vm,
      snapshot: { name_description: 'two' },
    })
    expect(next.token > first.token).toBe(true)
  })

  it('class/ref filters, del events without snapshot, valid_ref_counts', async () => {
    const vm = await vmByName('build-01')
    const t = await runAsync(url, s, 'VM.clone', vm, 'short-lived')
    const clone = /OpaqueRef:[0-9a-f-]+/.exec(t.result)![0]
    const start = await ok(url, 'event.from', s, [`vm/${clone}`], '', 0)
    expect(start.events.map((e: any) => [e.operation, e.ref])).toEqual([['add', clone]])
    await ok(url, 'VM.set_name_label', s, vm, 'build-01') // another VM: filtered out
    await ok(url, 'VM.destroy', s, clone)
    const after = await ok(url, 'event.from', s, [`vm/${clone}`], start.token, 1)
    expect(after.events).toEqual([
      expect.objectContaining({ operation: 'del', ref: clone, class: 'vm' }),
    ])
    expect(after.events[0].snapshot).toBeUndefined()
    const counts = await ok(url, 'event.from', s, ['task', 'vm'], after.token, 0)
    expect(counts.valid_ref_counts.vm).toBe(
      Object.keys(await ok(url, 'VM.get_all_records', s)).length
    )
    expect(counts.valid_ref_counts.task).toBe((await ok(url, 'task.get_all', s)).length)
  })

  it('the token only advances with relevant changes', async () => {
    const { token } = await ok(url, 'event.from', s, ['pool'], '', 0)
    await ok(url, 'VM.set_name_description', s, await vmByName('build-01'), 'elsewhere')
    expect((await ok(url, 'event.from', s, ['pool'], token, 0)).token).toBe(token)
  })

  it('long-polls until an event arrives (event.inject) and returns empty batches after the timeout', async () => {
    const { token } = await ok(url, 'event.from', s, ['pool'], '', 0)
    const empty = await ok(url, 'event.from', s, ['pool'], token, 0.05)
    expect(empty.events).toEqual([])
    const [pool] = await ok(url, 'pool.get_all', s)
    const waiting = ok(url, 'event.from', s, ['pool'], token, 30)
    // the class must be the ref's table name exactly
    expect(await failure(url, 'event.inject', s, 'Pool', pool)).toEqual([
      'HANDLE_INVALID',
      'Pool',
      pool,
    ])
    const injected = await ok(url, 'event.inject', s, 'pool', pool)
    expect(injected).toMatch(/^\d{20},\d{20}$/)
    const got = await waiting
    expect(got.events).toEqual([
      expect.objectContaining({ class: 'pool', ref: pool, operation: 'mod' }),
    ])
  })

  it('a blocked event.from fails with SESSION_INVALID when its session logs out', async () => {
    const s2 = await login(url, sim.user, sim.password)
    const { token } = await ok(url, 'event.from', s2, ['pool'], '', 0)
    const waiting = failure(url, 'event.from', s2, ['pool'], token, 30)
    await new Promise((r) => setTimeout(r, 50))
    await ok(url, 'session.logout', s2)
    expect(await waiting).toEqual(['SESSION_INVALID', s2])
  })

  it('bad tokens and subscriptions', async () => {
    expect(await failure(url, 'event.from', s, ['vm'], 'garbage', 0)).toEqual([
      'EVENT_FROM_TOKEN_PARSE_FAILURE',
      'garbage',
    ])
    expect(await failure(url, 'event.from', s, ['vm'], ' 1,0', 0)).toEqual([
      'EVENT_FROM_TOKEN_PARSE_FAILURE',
      ' 1,0',
    ])
    expect(await failure(url, 'event.from', s, ['vm'], '42', 0)).toEqual([
      'EVENT_FROM_TOKEN_PARSE_FAILURE',
      '42',
    ])
    // an unknown class is no error: it matches nothing (xapi's Subscription.of_string)
    expect((await ok(url, 'event.from', s, ['nothing'], '', 0)).events).toEqual([])
  })
})
