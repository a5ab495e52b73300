import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { startSimulator, type Simulator } from '../src/index.js'
import { failure, login, ok, runAsync, waitTask } from './rpc.js'

let sim: Simulator
let url: string
let s: string

beforeEach(async () => {
  sim = await startSimulator({ seed: 'small', timeScale: 0.001 })
  url = sim.pools[0]!.masterUrl
  s = await login(url, sim.user, sim.password)
})
afterEach(() => sim.close())

const vm = async (name: string): Promise<string> =>
  (await ok(url, 'VM.get_by_name_label', s, name))[0]
const rec = (ref: string) => ok(url, 'VM.get_record', s, ref)

describe('power lifecycle', () => {
  it('start → suspend → resume → pause → unpause → clean_reboot → hard_reboot → clean_shutdown', async () => {
    const ref = await vm('build-01')
    await ok(url, 'VM.start', s, ref, false, false)
    let r = await rec(ref)
    expect(r.power_state).toBe('Running')
    expect(await ok(url, 'host.get_resident_VMs', s, r.resident_on)).toContain(ref)
    expect(r.allowed_operations).toEqual(
      expect.arrayContaining(['clean_shutdown', 'hard_shutdown', 'suspend', 'pool_migrate'])
    )
    expect(r.allowed_operations).not.toContain('start')
    await ok(url, 'VM.suspend', s, ref)
    r = await rec(ref)
    expect(r).toMatchObject({ power_state: 'Suspended', resident_on: 'OpaqueRef:NULL' })
    expect(await ok(url, 'VDI.get_type', s, r.suspend_VDI)).toBe('suspend')
    await ok(url, 'VM.resume', s, ref, false, false)
    expect(await ok(url, 'VM.get_power_state', s, ref)).toBe('Running')
    expect(await failure(url, 'VDI.get_uuid', s, r.suspend_VDI)).toEqual([
      'HANDLE_INVALID',
      'VDI',
      r.suspend_VDI,
    ])
    await ok(url, 'VM.pause', s, ref)
    expect(await ok(url, 'VM.get_power_state', s, ref)).toBe('Paused')
    await ok(url, 'VM.unpause', s, ref)
    const domid = (await rec(ref)).domid
    await ok(url, 'VM.clean_reboot', s, ref)
    const rebooted = (await rec(ref)).domid
    expect(rebooted).not.toBe(domid) // a reboot builds a new domain
    await ok(url, 'VM.hard_reboot', s, ref)
    expect((await rec(ref)).domid).not.toBe(rebooted)
    expect(await ok(url, 'VM.get_power_state', s, ref)).toBe('Running')
    await ok(url, 'VM.clean_shutdown', s, ref)
    r = await rec(ref)
    expect(r).toMatchObject({ power_state: 'Halted', resident_on: 'OpaqueRef:NULL', domid: '-1' })
    expect(r.allowed_operations).toEqual(
      expect.arrayContaining(['start', 'destroy', 'clone', 'export'])
    )
  })

  it('hard_shutdown from Suspended destroys the suspend image; from Paused halts', async () => {
    const sus = await vm('cache-01')
    const suspendVdi = await ok(url, 'VM.get_suspend_VDI', s, sus)
    await ok(url, 'VM.hard_shutdown', s, sus)
    expect(await ok(url, 'VM.get_power_state', s, sus)).toBe('Halted')
    expect((await failure(url, 'VDI.get_record', s, suspendVdi))[0]).toBe('HANDLE_INVALID')
    const paused = await vm('paused-01')
    await ok(url, 'VM.hard_shutdown', s, paused)
    expect(await ok(url, 'VM.get_power_state', s, paused)).toBe('Halted')
  })

  it('VM_BAD_POWER_STATE [vm, "expected, states", "actual"] in lower case', async () => {
    const running = await vm('web-01')
    expect(await failure(url, 'VM.destroy', s, running)).toEqual([
      'VM_BAD_POWER_STATE',
      running,
      'halted, suspended',
      'running',
    ])
    expect(await failure(url, 'VM.start', s, running, false, false)).toEqual([
      'VM_BAD_POWER_STATE',
      running,
      'halted',
      'running',
    ])
    const halted = await vm('build-01')
    expect(await failure(url, 'VM.hard_shutdown', s, halted)).toEqual([
      'VM_BAD_POWER_STATE',
      halted,
      'paused, suspended, running',
      'halted',
    ])
    expect(await failure(url, 'VM.clean_shutdown', s, halted)).toEqual([
      'VM_BAD_POWER_STATE',
      halted,
      'running',
      'halted',
    ])
  })

  it('templates, control domains and blocked operations are refused', async () => {
    const tpl = await vm('Debian 12 template')
    expect(await failure(url, 'VM.start', s, tpl, false, false)).toEqual([
      'VM_IS_TEMPLATE',
      tpl,
      'start',
    ])
    const [dom0] = (Object.entries(await ok(url, 'VM.get_all_records', s)) as [string, any][]).find(
      ([, r]) => r.is_control_domain
    )!
    expect((await failure(url, 'VM.clean_shutdown', s, dom0))[0]).toBe('OPERATION_NOT_ALLOWED')
    const h = await vm('build-01')
    await ok(url, 'VM.set_blocked_operations', s, h, { start: 'maintenance' })
    expect(await failure(url, 'VM.start', s, h, false, false)).toEqual([
      'OPERATION_BLOCKED',
      h,
      'maintenance',
    ])
    expect(await ok(url, 'VM.get_allowed_operations', s, h)).not.toContain('start')
  })

  it('allowed_operations is exactly what the checks allow, for every VM', async () => {
    const all = (await ok(url, 'VM.get_all_records', s)) as Record<string, any>
    for (const [ref, r] of Object.entries(all)) {
      for (const op of [
        'start',
        'clean_shutdown',
        'hard_shutdown',
        'suspend',
        'resume',
        'unpause',
        'destroy',
        'pool_migrate',
      ]) {
        const desc = await xmlOutcome('VM.assert_operation_valid', ref, op)
        expect(desc === 'ok', `${r.name_label} ${op}: ${desc}`).toBe(
          r.allowed_operations.includes(op)
        )
      }
    }
  })

  it('changing_shadow_memory is a Halted-only operation (allowed_power_states)', async () => {
    const running = await vm('web-01')
    expect((await rec(running)).allowed_operations).not.toContain('changing_shadow_memory')
    expect(
      await failure(url, 'VM.assert_operation_valid', s, running, 'changing_shadow_memory')
    ).toEqual(['VM_BAD_POWER_STATE', running, 'halted', 'running'])
    expect((await rec(await vm('build-01'))).allowed_operations).toContain('changing_shadow_memory')
  })

  it('OTHER_OPERATION_IN_PROGRESS lists several operations and their tasks in braces', async () => {
    const ref = await vm('web-01')
    const db = sim.db.pool('pool-a')
    db.update(ref, {
      current_operations: { 'OpaqueRef:t1': 'snapshot', 'OpaqueRef:t2': 'checkpoint' },
    })
    expect(await failure(url, 'VM.assert_operation_valid', s, ref, 'clean_shutdown')).toEqual([
      'OTHER_OPERATION_IN_PROGRESS',
      'VM',
      ref,
      '{snapshot,checkpoint}',
      '{OpaqueRef:t1,OpaqueRef:t2}',
    ])
  })

  it('OTHER_OPERATION_IN_PROGRESS while a slow clean shutdown runs; hard_shutdown still allowed', async () => {
    await sim.close()
    sim = await startSimulator({ seed: 'small', timeScale: 0.01 })
    url = sim.pools[0]!.masterUrl
    s = await login(url, sim.user, sim.password)
    const ref = await vm('web-01')
    sim.faults.stubbornVm(ref, 'slow', { cleanShutdownS: 600 })
    const task = await ok(url, 'Async.VM.clean_shutdown', s, ref)
    expect(await failure(url, 'VM.clean_reboot', s, ref)).toEqual([
      'OTHER_OPERATION_IN_PROGRESS',
      'VM',
      ref,
      'clean_shutdown',
      task,
    ])
    expect(await ok(url, 'VM.get_allowed_operations', s, ref)).toEqual(
      expect.arrayContaining(['hard_shutdown'])
    )
    expect(await ok(url, 'VM.get_allowed_operations', s, ref)).not.toContain('clean_reboot')
    await ok(url, 'VM.hard_shutdown', s, ref)
    expect(await ok(url, 'VM.get_power_state', s, ref)).toBe('Halted')
    // the hard shutdown cancelled the clean one (message_forwarding.ml)
    expect((await waitTask(url, s, task)).status).toBe('cancelled')
    expect(await ok(url, 'VM.get_current_operations', s, ref)).toEqual({})
  })
})

describe('memory and VCPUs', () => {
  it('set_memory*, MEMORY_CONSTRAINT_VIOLATION, power-state rules, free memory', async () => {
    const halted = await vm('build-01')
    await ok(url, 'VM.set_memory', s, halted, String(2 ** 31))
    expect(await rec(halted)).toMatchObject({
      memory_static_max: String(2 ** 31),
      memory_dynamic_min: String(2 ** 31),
    })
    expect(
      (
        await failure(
          url,
          'VM.set_memory_dynamic_range',
          s,
          halted,
          String(2 ** 32),
          String(2 ** 31)
        )
      )[0]
    ).toBe('MEMORY_CONSTRAINT_VIOLATION')
    const running = await vm('web-01')
    expect(await failure(url, 'VM.set_memory', s, running, String(2 ** 30))).toEqual([
      'VM_BAD_POWER_STATE',
      running,
      'halted',
      'running',
    ])
    await ok(url, 'VM.set_memory_dynamic_range', s, running, String(2 ** 29), String(2 ** 30))
    expect(await failure(url, 'VM.set_VCPUs_number_live', s, running, '4')).toEqual([
      'INVALID_VALUE',
      'nvcpu',
      '4',
    ])
    const h = await ok(url, 'VM.get_resident_on', s, running)
    expect(await ok(url, 'host.compute_free_memory', s, h)).toBe(
      await ok(url, 'host_metrics.get_memory_free', s, await ok(url, 'host.get_metrics', s, h))
    )
  })
})

describe('guest behaviours', () => {
  it('no PV drivers: clean ops, suspend and migration refused (VM_LACKS_FEATURE); VM.shutdown falls back to hard', async () => {
    const ref = await vm('web-01')
    sim.faults.stubbornVm('web-01', 'no-pv')
    const allowed = await ok(url, 'VM.get_allowed_operations', s, ref)
    for (const op of ['clean_shutdown', 'clean_reboot', 'suspend', 'pool_migrate', 'migrate_send'])
      expect(allowed).not.toContain(op)
    expect(allowed).toEqual(expect.arrayContaining(['hard_shutdown', 'hard_reboot', 'snapshot']))
    expect(await failure(url, 'VM.clean_shutdown', s, ref)).toEqual(['VM_LACKS_FEATURE', ref])
    const [h1, h2] = sim.pools[0]!.hosts
    const other = (await rec(ref)).resident_on === h1!.ref ? h2! : h1!
    expect(await failure(url, 'VM.pool_migrate', s, ref, other.ref, {})).toEqual([
      'VM_LACKS_FEATURE',
      ref,
    ])
    // such a VM prevents the evacuation of its host
    const host = (await rec(ref)).resident_on
    expect((await ok(url, 'host.get_vms_which_prevent_evacuation', s, host))[ref]).toEqual([
      'VM_LACKS_FEATURE',
      ref,
    ])
    await ok(url, 'VM.shutdown', s, ref)
    expect(await ok(url, 'VM.get_power_state', s, ref)).toBe('Halted')
  })

  it('a guest that ignores clean shutdown: VM_FAILED_SHUTDOWN_ACKNOWLEDGMENT, VM still running', async () => {
    const ref = await vm('db-01')
    sim.faults.stubbornVm(ref, 'ignore', { cleanShutdownS: 5 })
    const t = await runAsync(url, s, 'VM.clean_shutdown', ref)
    expect(t.status).toBe('failure')
    expect(t.error_info).toEqual(['VM_FAILED_SHUTDOWN_ACKNOWLEDGMENT', ref])
    expect(await ok(url, 'VM.get_power_state', s, ref)).toBe('Running')
    expect(await ok(url, 'VM.get_current_operations', s, ref)).toEqual({})
    await ok(url, 'VM.shutdown', s, ref) // clean attempt times out, then hard
    expect(await ok(url, 'VM.get_power_state', s, ref)).toBe('Halted')
  })

  it('faults.clear() restores normal guests', async () => {
    const ref = await vm('web-01')
    sim.faults.stubbornVm(ref, 'no-pv')
    sim.faults.clear()
    expect(await ok(url, 'VM.get_allowed_operations', s, ref)).toContain('clean_shutdown')
  })
})

describe('snapshots, destroy, VDI.destroy', () => {
  it('VM.snapshot clones the disks (same content), links snapshot_of/snapshots', async () => {
    const ref = await vm('db-01')
    const snap = await ok(url, 'VM.snapshot', s, ref, 'db-01 snap')
    const sr = await rec(snap)
    expect(sr).toMatchObject({
      is_a_snapshot: true,
      snapshot_of: ref,
      power_state: 'Halted',
      name_label: 'db-01 snap',
    })
    expect(await ok(url, 'VM.get_snapshots', s, ref)).toContain(snap)
    const db = sim.db.pool('pool-a')
    const disks = (vmRef: string) =>
      (db.get(vmRef)!.VBDs as string[])
        .map((b) => db.get(b)!.VDI as string)
        .filter((v) => db.has('VDI', v))
    const orig = disks(ref)
    const copies = disks(snap)
    expect(copies).toHaveLength(orig.length)
    for (let i = 0; i < orig.length; i++) {
      expect(copies[i]).not.toBe(orig[i])
      expect(db.get(copies[i]!)!.snapshot_of).toBe(orig[i])
      expect(db.get(copies[i]!)!.is_a_snapshot).toBe(true)
      expect(db.vdiContent.get(copies[i]!)!.hash()).toBe(db.vdiContent.get(orig[i]!)!.hash())
    }
  })

  it('VM.checkpoint keeps the memory image; VM.revert restores disks and power state', async () => {
    const ref = await vm('web-01')
    const cp = await ok(url, 'VM.checkpoint', s, ref, 'web-01 checkpoint')
    const cpRec = await rec(cp)
    expect(cpRec).toMatchObject({ is_a_snapshot: true, power_state: 'Suspended', snapshot_of: ref })
    expect(await ok(url, 'VDI.get_type', s, cpRec.suspend_VDI)).toBe('suspend')
    const db = sim.db.pool('pool-a')
    const [snap] = (await rec(ref)).snapshots.filter((x: string) => x !== cp)
    const diskHashes = (v: string) =>
      (db.get(v)!.VBDs as string[])
        .map((b) => db.get(b)!.VDI as string)
        .filter((x) => db.has('VDI', x))
        .map((x) => db.vdiContent.get(x)!.hash())
    await ok(url, 'VM.revert', s, snap)
    const r = await rec(ref)
    expect(r).toMatchObject({ power_state: 'Halted', parent: snap })
    expect(diskHashes(ref)).toEqual(diskHashes(snap))
    await ok(url, 'VM.revert', s, cp)
    expect(await ok(url, 'VM.get_power_state', s, ref)).toBe('Suspended')
    expect(await failure(url, 'VM.revert', s, ref)).toEqual(['ONLY_REVERT_SNAPSHOT'])
  })

  it('VM.destroy keeps the VDIs; VDI.destroy removes them; VDI_IN_USE while attached', async () => {
    const ref = await vm('build-01')
    const db = sim.db.pool('pool-a')
    const vdis = (db.get(ref)!.VBDs as string[])
      .map((b) => db.get(b)!.VDI as string)
      .filter((v) => db.has('VDI', v))
    await ok(url, 'VM.destroy', s, ref)
    expect(await failure(url, 'VM.get_record', s, ref)).toEqual(['HANDLE_INVALID', 'VM', ref])
    for (const v of vdis) {
      expect(await ok(url, 'VDI.get_VBDs', s, v)).toEqual([])
      await ok(url, 'VDI.destroy', s, v)
      expect(db.vdiContent.has(v)).toBe(false)
    }
    const running = await vm('web-01')
    const vbd = (db.get(running)!.VBDs as string[]).find((b) => db.get(b)!.type === 'Disk')!
    const busy = db.get(vbd)!.VDI
    expect(await failure(url, 'VDI.destroy', s, busy)).toEqual(['VDI_IN_USE', busy, 'destroy'])
  })
})

describe('appliances and delays', () => {
  it('VM_appliance.start starts groups in ascending order, shutdown in descending order', async () => {
    const [app] = await ok(url, 'VM_appliance.get_by_name_label', s, 'web-stack')
    await ok(url, 'VM_appliance.hard_shutdown', s, app)
    const members = await ok(url, 'VM_appliance.get_VMs', s, app)
    for (const m of members) expect(await ok(url, 'VM.get_power_state', s, m)).toBe('Halted')
    const { token } = await ok(url, 'event.from', s, ['vm'], '', 0)
    await ok(url, 'VM_appliance.start', s, app, false)
    const seen: string[] = []
    let tok = token
    for (let i = 0; i < 20 && seen.length < 2; i++) {
      const b = await ok(url, 'event.from', s, ['vm'], tok, 0)
      tok = b.token
      for (const e of b.events)
        if (e.snapshot?.power_state === 'Running' && !seen.includes(e.snapshot.name_label))
          seen.push(e.snapshot.name_label)
    }
    expect(seen).toEqual(['db-01', 'web-01']) // order 0 before order 1
  })

  it('VM_appliance operations follow the member power states (allowed_operations and checks)', async () => {
    const [app] = await ok(url, 'VM_appliance.get_by_name_label', s, 'web-stack')
    // both members running: nothing to start
    expect(await ok(url, 'VM_appliance.get_allowed_operations', s, app)).toEqual([
      'clean_shutdown',
      'hard_shutdown',
      'shutdown',
    ])
    expect(await failure(url, 'VM_appliance.start', s, app, false)).toEqual([
      'OPERATION_NOT_ALLOWED',
      'There are no halted VMs in this appliance.',
    ])
    await ok(url, 'VM_appliance.hard_shutdown', s, app)
    expect(await ok(url, 'VM_appliance.get_allowed_operations', s, app)).toEqual(['start'])
    expect(await failure(url, 'VM_appliance.clean_shutdown', s, app)).toEqual([
      'OPERATION_NOT_ALLOWED',
      'There are no running VMs in this appliance.',
    ])
    const fresh = await ok(url, 'VM_appliance.create', s, { name_label: 'empty' })
    expect(await ok(url, 'VM_appliance.get_allowed_operations', s, fresh)).toEqual([])
    expect(await failure(url, 'VM_appliance.start', s, fresh, false)).toEqual([
      'OPERATION_NOT_ALLOWED',
      'Appliance has no VMs.',
    ])
  })

  it('start_delay is slept inside VM.start, after the VM is running (scaled)', async () => {
    const ref = await vm('build-01')
    await ok(url, 'VM.set_start_delay', s, ref, 3000) // 3000 s × 0.001 = 3 s real
    const task = await ok(url, 'Async.VM.start', s, ref, false, false)
    await expect.poll(() => ok(url, 'VM.get_power_state', s, ref), { interval: 5 }).toBe('Running')
    expect(await ok(url, 'task.get_status', s, task)).toBe('pending')
    expect((await waitTask(url, s, task)).status).toBe('success')
  })
})

describe('hosts', () => {
  it('host.disable keeps VMs running but refuses placement; enable restores it', async () => {
    const [h1, h2] = sim.pools[0]!.hosts
    await ok(url, 'host.disable', s, h2!.ref)
    expect(await ok(url, 'host.get_enabled', s, h2!.ref)).toBe(false)
    expect(await ok(url, 'VM.get_power_state', s, await vm('db-01'))).toBe('Running')
    const ref = await vm('build-01')
    expect(await failure(url, 'VM.start_on', s, ref, h2!.ref, false, false)).toEqual([
      'HOST_DISABLED',
      h2!.ref,
    ])
    await ok(url, 'VM.start', s, ref, false, false)
    expect(await ok(url, 'VM.get_resident_on', s, ref)).toBe(h1!.ref)
    await ok(url, 'host.enable', s, h2!.ref)
    expect(await ok(url, 'host.get_enabled', s, h2!.ref)).toBe(true)
  })

  it('get_vms_which_prevent_evacuation and host.evacuate (progress, placement, subtasks)', async () => {
    const [h1, h2] = sim.pools[0]!.hosts
    const blockers = await ok(url, 'host.get_vms_which_prevent_evacuation', s, h1!.ref)
    const paused = await vm('paused-01')
    expect(blockers).toEqual({ [paused]: ['VM_BAD_POWER_STATE', paused, 'running', 'paused'] })
    const failed = await runAsync(url, s, 'host.evacuate', h1!.ref)
    expect(failed.error_info).toEqual(['VM_BAD_POWER_STATE', paused, 'running', 'paused'])
    await ok(url, 'VM.hard_shutdown', s, paused)
    await ok(url, 'host.disable', s, h1!.ref)
    const t = await runAsync(url, s, 'host.evacuate', h1!.ref)
    expect(t.status).toBe('success')
    expect(t.progress).toBe(1)
    expect(t.subtasks.length).toBeGreaterThan(0)
    const left = (await ok(url, 'host.get_resident_VMs', s, h1!.ref)) as string[]
    for (const r of left) expect(await ok(url, 'VM.get_is_control_domain', s, r)).toBe(true)
    expect(await ok(url, 'VM.get_resident_on', s, await vm('web-01'))).toBe(h2!.ref)
  })

  it('host.evacuate is cancellable: cancelled, its migration subtasks cancelled, VMs stay put', async () => {
    await sim.close()
    sim = await startSimulator({ seed: 'small', timeScale: 1 }) // a migration takes ~1.5 s here
    url = sim.pools[0]!.masterUrl
    s = await login(url, sim.user, sim.password)
    const [h1] = sim.pools[0]!.hosts
    await ok(url, 'VM.hard_shutdown', s, await vm('paused-01'))
    const task = await ok(url, 'Async.host.evacuate', s, h1!.ref)
    await expect.poll(() => ok(url, 'task.get_subtasks', s, task), { interval: 10 }).toHaveLength(1)
    await ok(url, 'task.cancel', s, task)
    const t = await waitTask(url, s, task)
    expect(t).toMatchObject({ status: 'cancelled', error_info: [], progress: 1 })
    expect(await ok(url, 'task.get_status', s, t.subtasks[0])).toBe('cancelled')
    expect(await ok(url, 'VM.get_resident_on', s, await vm('web-01'))).toBe(h1!.ref)
    expect(await ok(url, 'host.get_current_operations', s, h1!.ref)).toEqual({})
  })

  it('VM.pool_migrate moves a running VM; HOST_NOT_ENOUGH_FREE_MEMORY when it does not fit', async () => {
    await sim.close()
    sim = await startSimulator({
      timeScale: 0.001,
      seed: {
        pools: [
          {
            name: 'tight',
            hosts: [
              { name: 'big', memoryGiB: 32 },
              { name: 'tiny', memoryGiB: 4 },
            ],
            srs: [{ name: 'nfs', shared: true, default: true }],
            networks: [{ name: 'net' }],
            vms: [
              {
                name: 'fat',
                powerState: 'Running',
                host: 'big',
                memoryMiB: 8192,
                disks: [{ sizeMiB: 1 }],
              },
              {
                name: 'slim',
                powerState: 'Running',
                host: 'big',
                memoryMiB: 512,
                disks: [{ sizeMiB: 1 }],
              },
            ],
          },
        ],
      },
    })
    url = sim.pools[0]!.masterUrl
    s = await login(url, sim.user, sim.password)
    const tiny = sim.pools[0]!.hosts[1]!.ref
    const fat = await vm('fat')
    const free = await ok(
      url,
      'host_metrics.get_memory_free',
      s,
      await ok(url, 'host.get_metrics', s, tiny)
    )
    const e = await failure(url, 'VM.pool_migrate', s, fat, tiny, { live: 'true' })
    expect(e).toEqual(['HOST_NOT_ENOUGH_FREE_MEMORY', expect.stringMatching(/^\d+$/), free])
    expect(Number(e[1])).toBeGreaterThan(Number(free))
    const slim = await vm('slim')
    await ok(url, 'VM.pool_migrate', s, slim, tiny, { live: 'true' })
    expect(await ok(url, 'VM.get_resident_on', s, slim)).toBe(tiny)
    expect(
      Number(
        await ok(url, 'host_metrics.get_memory_free', s, await ok(url, 'host.get_metrics', s, tiny))
      )
    ).toBeLessThan(Number(free))
  })
})

async function xmlOutcome(method: string, ...params: unknown[]): Promise<string> {
  const { xmlCall } = await import('./rpc.js')
  const r = await xmlCall(url, method, [s, ...params])
  return r.Status === 'Success' ? 'ok' : r.ErrorDescription!.join(' ')
}

describe('host power', () => {
  it('host.shutdown needs a disabled host, shuts down or evacuates its VMs (auto_poweroff opt-out), then stops answering', async () => {
    const [h1, h2] = sim.pools[0]!.hosts
    expect(await failure(url, 'host.shutdown', s, h2!.ref)).toEqual(['HOST_NOT_DISABLED'])
    const db01 = await vm('db-01') // on h2
    await ok(url, 'VM.add_to_other_config', s, db01, 'auto_poweroff', 'false')
    await ok(url, 'host.disable', s, h2!.ref)
    const t = await runAsync(url, s, 'host.shutdown', h2!.ref)
    expect(t.status).toBe('success')
    // opted out: evacuated, not shut down
    expect(await ok(url, 'VM.get_power_state', s, db01)).toBe('Running')
    expect(await ok(url, 'VM.get_resident_on', s, db01)).toBe(h1!.ref)
    expect(
      await ok(url, 'host_metrics.get_live', s, await ok(url, 'host.get_metrics', s, h2!.ref))
    ).toBe(false)
    await expect(ok(h2!.url, 'pool.get_all', s)).rejects.toThrow()
  })
})
