import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startSimulator, type SeedData, type Simulator } from '@xapi-ops/xapi-sim'
import { describe, expect, test as base } from 'vitest'
import { runScript, spawnScript, type ScriptResult } from './helpers.js'

// One pool, two hosts. On h1: two order-2 VMs, one order-1, one order-0, a Paused VM, a VM that
// opted out, plus Halted/Suspended VMs and a VM of h2 that must be neither touched nor listed.
const NET = 'VM network'
const vm = (name: string, extra: Record<string, unknown> = {}) => ({
  name,
  powerState: 'Running' as const,
  host: 'h1',
  memoryMiB: 512,
  disks: [{ sizeMiB: 8 }],
  networks: [NET],
  ...extra,
})
function seed(extraVms: Array<ReturnType<typeof vm>> = []): SeedData {
  return {
    pools: [
      {
        name: 'lab',
        hosts: [
          { name: 'h1', memoryGiB: 32 },
          { name: 'h2', memoryGiB: 32 },
        ],
        srs: [
          { name: 'shared', type: 'nfs', shared: true, default: true, sizeGiB: 100 },
          { name: 'local-h1', type: 'ext', shared: false, host: 'h1', sizeGiB: 100 },
        ],
        networks: [{ name: NET }],
        vms: [
          vm('db-1', { order: 2 }),
          vm('db-2', { order: 2 }),
          vm('app-1', { order: 1 }),
          vm('web-1', { order: 0 }),
          vm('frozen', { powerState: 'Paused', order: 0 }),
          vm('pacemaker', { otherConfig: { auto_poweroff: 'false' } }),
          vm('stopped', { powerState: 'Halted', host: undefined }),
          vm('sleeping', { powerState: 'Suspended', host: undefined }),
          vm('elsewhere', { host: 'h2', order: 5 }),
          ...extraVms,
        ],
      },
    ],
  }
}

const test = base.extend<{ sim: Simulator }>({
  // eslint-disable-next-line no-empty-pattern
  sim: async ({}, use) => {
    const sim = await startSimulator({ seed: seed(), timeScale: 0.01 })
    await use(sim)
    await sim.close()
  },
})

const pool = (sim: Simulator) => sim.pools[0]!
const env = (sim: Simulator, url = pool(sim).masterUrl) => ({
  XAPI_URL: url,
  XAPI_USER: sim.user,
  XAPI_PASSWORD: sim.password,
})
const vmRef = (sim: Simulator, name: string) => sim.db.find('VM', (r) => r.name_label === name)![0]
const powerState = (sim: Simulator, name: string) =>
  sim.db.find('VM', (r) => r.name_label === name)![1].power_state as string
const residentOn = (sim: Simulator, name: string) => {
  const host = sim.db.find('VM', (r) => r.name_label === name)![1].resident_on as string
  return sim.db.get(host)?.name_label as string | undefined
}
const byName = (result: ScriptResult) =>
  Object.fromEntries(result.results.map((r) => [r.name as string, r]))
const callsOf = (sim: Simulator, method: string, name?: string) =>
  sim.calls.filter(
    (c) => c.method === method && (name === undefined || c.params[1] === vmRef(sim, name))
  )

/** Every task the script created is destroyed, every session it opened is logged out. */
function expectNoLeftovers(sim: Simulator) {
  const ok = (method: string) =>
    sim.calls.filter((c) => c.method === method && c.outcome === 'success')
  const asyncCalls = sim.calls.filter(
    (c) => c.method.startsWith('Async.') && c.outcome === 'success'
  )
  expect.soft(ok('task.destroy').length, 'task.destroy per Async.* call').toBe(asyncCalls.length)
  // Subtasks are the server's own (host.evacuate's VM.pool_migrate): not ours to destroy.
  const ours = sim.db.filter('task').filter(([, t]) => t.subtask_of === 'OpaqueRef:NULL')
  expect.soft(ours, 'tasks left in the database').toEqual([])
  expect.soft(ok('session.logout').length, 'logouts').toBe(ok('session.login_with_password').length)
  expect.soft(ok('session.login_with_password').length).toBeGreaterThan(0)
}

/** Methods that change something (not getters, sessions, events or task bookkeeping). */
const mutatingCalls = (sim: Simulator) =>
  sim.calls.filter(
    (c) => !/^([^.]+\.get_|session\.|event\.|system\.|task\.(destroy|cancel))/.test(c.method)
  )

/**
 * Records, in the simulator's own call sequence, when each VM's shutdown was requested and when
 * it became Halted, so that ordering is checked on the server's side of the story.
 */
function watchHalts(sim: Simulator, names: string[], signal: AbortSignal) {
  const db = sim.db.pool('lab')
  const haltedAt = new Map<string, number>()
  void (async () => {
    while (!signal.aborted) {
      for (const name of names) {
        if (!haltedAt.has(name) && powerState(sim, name) === 'Halted')
          haltedAt.set(name, sim.calls.length)
      }
      await db.waitForChange(1000, signal)
    }
  })()
  return haltedAt
}
const requestedAt = (sim: Simulator, name: string) =>
  sim.calls.findIndex(
    (c) => /^Async\.VM\.(clean|hard)_shutdown$/.test(c.method) && c.params[1] === vmRef(sim, name)
  )

describe('host-shutdown', () => {
  test('shuts the host VMs down by order groups, highest first, and leaves everything else alone', async ({
    sim,
    signal,
  }) => {
    const watch = new AbortController()
    const halted = watchHalts(sim, ['db-1', 'db-2', 'app-1', 'web-1', 'frozen'], watch.signal)
    const result = await runScript('host-shutdown', ['--host', 'h1', '--json'], {
      env: env(sim),
      signal,
    })
    watch.abort()

    expect(result.code, result.stderr).toBe(0)
    expect(byName(result)).toEqual({
      'db-1': expect.objectContaining({ status: 'ok', action: 'clean_shutdown' }),
      'db-2': expect.objectContaining({ status: 'ok', action: 'clean_shutdown' }),
      'app-1': expect.objectContaining({ status: 'ok', action: 'clean_shutdown' }),
      'web-1': expect.objectContaining({ status: 'ok', action: 'clean_shutdown' }),
      frozen: expect.objectContaining({ status: 'ok', action: 'hard_shutdown' }),
      pacemaker: expect.objectContaining({ status: 'skipped', action: 'none' }),
    })
    for (const r of result.results) expect(r.vm).toMatch(/^[0-9a-f-]{36}$/)
    expect(result.summary).toMatchObject({ total: 6, ok: 5, skipped: 1, failed: 0, exitCode: 0 })
    expect(result.lines.at(-1)).toHaveProperty('results')

    // Order: every VM of a group halted before any VM of the next group was asked to stop.
    const groups = [['db-1', 'db-2'], ['app-1'], ['web-1', 'frozen']]
    for (let i = 1; i < groups.length; i++) {
      const lastHalt = Math.max(...groups[i - 1]!.map((n) => halted.get(n) ?? Infinity))
      const firstRequest = Math.min(...groups[i]!.map((n) => requestedAt(sim, n)))
      expect(lastHalt, `group ${i - 1} halted before group ${i} started`).toBeLessThanOrEqual(
        firstRequest
      )
    }
    // The Paused VM is hard-shut directly: clean shutdown needs a running guest.
    expect(callsOf(sim, 'Async.VM.clean_shutdown', 'frozen')).toEqual([])
    for (const name of ['pacemaker', 'elsewhere']) expect(powerState(sim, name)).toBe('Running')
    expect(powerState(sim, 'sleeping')).toBe('Suspended')
    for (const name of ['pacemaker', 'elsewhere', 'stopped', 'sleeping']) {
      expect(callsOf(sim, 'Async.VM.clean_shutdown', name)).toEqual([])
      expect(callsOf(sim, 'Async.VM.hard_shutdown', name)).toEqual([])
    }
    expectNoLeftovers(sim)
  })

  test('falls back to a hard shutdown when a guest ignores the clean one', async ({
    sim,
    signal,
  }) => {
    sim.faults.stubbornVm('app-1', 'ignore', { cleanShutdownS: 100_000 })
    const result = await runScript(
      'host-shutdown',
      ['--host', 'h1', '--json', '--clean-timeout', '1'],
      {
        env: env(sim),
        signal,
      }
    )
    expect(result.code, result.stderr).toBe(0)
    expect(byName(result)['app-1']).toMatchObject({ status: 'ok', action: 'hard_shutdown' })
    expect(powerState(sim, 'app-1')).toBe('Halted')
    const seq = sim.calls.map((c) => c.method)
    const clean = seq.indexOf('Async.VM.clean_shutdown', requestedAt(sim, 'app-1'))
    expect(callsOf(sim, 'Async.VM.clean_shutdown', 'app-1')).toHaveLength(1)
    expect(seq.indexOf('task.cancel', clean)).toBeGreaterThan(clean)
    expect(callsOf(sim, 'Async.VM.hard_shutdown', 'app-1')).toHaveLength(1)
    // The next group waited for the fallback.
    expect(requestedAt(sim, 'web-1')).toBeGreaterThan(
      sim.calls.indexOf(callsOf(sim, 'Async.VM.hard_shutdown', 'app-1')[0]!)
    )
    expectNoLeftovers(sim)
  })

  test('--no-hard-fallback leaves a stubborn VM running and exits 1', async ({ sim, signal }) => {
    sim.faults.stubbornVm('app-1', 'ignore', { cleanShutdownS: 100_000 })
    const result = await runScript(
      'host-shutdown',
      ['--host', 'h1', '--json', '--clean-timeout', '1', '--no-hard-fallback'],
      { env: env(sim), signal }
    )
    expect(result.code).toBe(1)
    expect(byName(result)['app-1']).toMatchObject({
      status: 'failed',
      action: 'clean_shutdown',
      error: expect.stringContaining('no clean shutdown within 1 s'),
      errorCode: 'CLEAN_TIMEOUT',
    })
    expect(powerState(sim, 'app-1')).toBe('Running')
    expect(callsOf(sim, 'Async.VM.hard_shutdown', 'app-1')).toEqual([])
    expect(byName(result)['web-1']).toMatchObject({ status: 'ok', action: 'clean_shutdown' })
    expectNoLeftovers(sim)
  })

  test('hard-shuts a VM without PV drivers at once', async ({ sim, signal }) => {
    sim.faults.stubbornVm('web-1', 'no-pv')
    const result = await runScript('host-shutdown', ['--host', 'h1', '--json'], {
      env: env(sim),
      signal,
    })
    expect(result.code, result.stderr).toBe(0)
    expect(byName(result)['web-1']).toMatchObject({ status: 'ok', action: 'hard_shutdown' })
    expect(callsOf(sim, 'Async.VM.clean_shutdown', 'web-1')).toEqual([])
    expectNoLeftovers(sim)
  })

  test('reports a VM failing with an XAPI error, goes on with the others, exits 1', async ({
    sim,
    signal,
  }) => {
    sim.faults.failMethod('VM.hard_shutdown', 'INTERNAL_ERROR', ['simulated failure'])
    const result = await runScript('host-shutdown', ['--host', 'h1', '--json'], {
      env: env(sim),
      signal,
    })
    expect(result.code).toBe(1)
    expect(byName(result).frozen).toMatchObject({
      status: 'failed',
      action: 'hard_shutdown',
      error: expect.stringContaining('INTERNAL_ERROR(simulated failure)'),
    })
    expect(byName(result)['web-1']).toMatchObject({ status: 'ok' })
    expect(result.summary).toMatchObject({ ok: 4, failed: 1, exitCode: 1 })
    expectNoLeftovers(sim)
  })

  test('--dry-run prints the plan and changes nothing', async ({ sim, signal }) => {
    const before = sim.db.filter('VM').map(([, r]) => [r.name_label, r.power_state, r.resident_on])
    const result = await runScript(
      'host-shutdown',
      ['--host', 'h1', '--json', '--dry-run', '--evacuate'],
      {
        env: env(sim),
        signal,
      }
    )
    expect(result.code, result.stderr).toBe(0)
    const plan = result.events.find((e) => e.kind === 'plan')
    expect(plan).toMatchObject({
      dryRun: true,
      groups: [
        {
          order: 2,
          vms: [
            { name: 'db-1', action: 'migrate' },
            { name: 'db-2', action: 'migrate' },
          ],
        },
        { order: 1, vms: [{ name: 'app-1', action: 'migrate' }] },
        {
          order: 0,
          vms: [
            { name: 'frozen', action: 'hard_shutdown' },
            { name: 'web-1', action: 'migrate' },
          ],
        },
      ],
      skipped: [{ name: 'pacemaker' }],
      evacuate: { targets: ['h2'], blocked: [{ name: 'frozen' }] },
    })
    expect(result.summary).toMatchObject({ dryRun: true, failed: 0 })
    expect(mutatingCalls(sim)).toEqual([])
    expect(
      sim.db.filter('VM').map(([, r]) => [r.name_label, r.power_state, r.resident_on])
    ).toEqual(before)
    expectNoLeftovers(sim)
  })

  test('--evacuate migrates what can move, then shuts down what cannot', async ({ signal }) => {
    const localDisk = vm('pinned', { order: 3, disks: [{ sizeMiB: 8, sr: 'local-h1' }] })
    await using sim = await startSimulator({ seed: seed([localDisk]), timeScale: 0.01 })
    const result = await runScript('host-shutdown', ['--host', 'h1', '--json', '--evacuate'], {
      env: env(sim),
      signal,
    })
    expect(result.code, result.stderr).toBe(0)
    const results = byName(result)
    for (const name of ['db-1', 'db-2', 'app-1', 'web-1']) {
      expect(results[name]).toMatchObject({ status: 'ok', action: 'migrated' })
      expect(powerState(sim, name)).toBe('Running')
      expect(residentOn(sim, name)).toBe('h2')
    }
    expect(results.pinned).toMatchObject({ status: 'ok', action: 'clean_shutdown' })
    expect(results.frozen).toMatchObject({ status: 'ok', action: 'hard_shutdown' })
    // The dom0 way: what cannot move is shut down before host.evacuate runs.
    const evacuate = sim.calls.findIndex((c) => c.method === 'Async.host.evacuate')
    expect(evacuate).toBeGreaterThan(requestedAt(sim, 'pinned'))
    expect(result.events.find((e) => e.kind === 'evacuate-end')).toMatchObject({
      outcome: 'done',
      migrated: 4,
    })
    expectNoLeftovers(sim)
  })

  test('when host.evacuate refuses, every VM is shut down in order instead', async ({ signal }) => {
    const localDisk = vm('pinned', { order: 3, disks: [{ sizeMiB: 8, sr: 'local-h1' }] })
    await using sim = await startSimulator({ seed: seed([localDisk]), timeScale: 0.01 })
    // A server that cannot list the blockers: the evacuation itself fails on `pinned`.
    sim.faults.failMethod('host.get_vms_which_prevent_evacuation', 'MESSAGE_METHOD_UNKNOWN', [
      'host.get_vms_which_prevent_evacuation',
    ])
    const result = await runScript('host-shutdown', ['--host', 'h1', '--json', '--evacuate'], {
      env: env(sim),
      signal,
    })
    expect(result.code, result.stderr).toBe(0)
    expect(result.events.find((e) => e.kind === 'evacuate-end')).toMatchObject({
      outcome: 'failed',
      migrated: 0,
      error: expect.stringContaining('VM_REQUIRES_SR'),
    })
    for (const name of ['pinned', 'db-1', 'db-2', 'app-1', 'web-1']) {
      expect(byName(result)[name]).toMatchObject({ status: 'ok', action: 'clean_shutdown' })
      expect(residentOn(sim, name)).toBeUndefined()
    }
    expect(requestedAt(sim, 'pinned')).toBeLessThan(requestedAt(sim, 'db-1'))
    expect(requestedAt(sim, 'app-1')).toBeGreaterThan(requestedAt(sim, 'db-2'))
    expectNoLeftovers(sim)
  })

  test('an evacuation over its budget is cancelled and what did not move is shut down', async ({
    signal,
  }) => {
    // 200 GiB of RAM to move: 200 simulated seconds, 2 real seconds at this time scale.
    const big = seed()
    big.pools[0]!.hosts = [
      { name: 'h1', memoryGiB: 512 },
      { name: 'h2', memoryGiB: 512 },
    ]
    big.pools[0]!.vms = [vm('huge', { memoryMiB: 200 * 1024 })]
    await using sim = await startSimulator({ seed: big, timeScale: 0.01 })
    const result = await runScript(
      'host-shutdown',
      ['--host', 'h1', '--json', '--evacuate', '--evacuate-timeout', '0.3'],
      { env: env(sim), signal }
    )
    expect(result.code, result.stderr).toBe(0)
    expect(result.events.find((e) => e.kind === 'evacuate-end')).toMatchObject({
      outcome: 'timeout',
      migrated: 0,
      remaining: 1,
    })
    expect(byName(result).huge).toMatchObject({ status: 'ok', action: 'clean_shutdown' })
    expect(residentOn(sim, 'huge')).toBeUndefined()
    expect(powerState(sim, 'huge')).toBe('Halted')
    expect(callsOf(sim, 'task.cancel').length).toBeGreaterThan(0)
    expectNoLeftovers(sim)
  })

  test('SIGTERM during the evacuation cancels it and exits 130', async ({ signal }) => {
    const big = seed()
    big.pools[0]!.hosts = [
      { name: 'h1', memoryGiB: 512 },
      { name: 'h2', memoryGiB: 512 },
    ]
    big.pools[0]!.vms = [vm('huge', { memoryMiB: 200 * 1024 }), vm('small', { order: 1 })]
    await using sim = await startSimulator({ seed: big, timeScale: 0.01 })
    const run = spawnScript('host-shutdown', ['--host', 'h1', '--json', '--evacuate'], {
      env: env(sim),
      signal,
    })
    await run.waitForLine((l) => l.kind === 'evacuate-start')
    await expect.poll(() => callsOf(sim, 'Async.host.evacuate').length).toBe(1)
    run.child.kill('SIGTERM')
    const result = await run.done
    expect(result.code).toBe(130)
    expect(result.events.find((e) => e.kind === 'evacuate-end')).toMatchObject({
      outcome: 'interrupted',
    })
    expect(callsOf(sim, 'task.cancel').length).toBeGreaterThan(0)
    expect(callsOf(sim, 'Async.VM.clean_shutdown')).toEqual([])
    expect(powerState(sim, 'huge')).toBe('Running')
    expect(result.results).toHaveLength(2)
    expectNoLeftovers(sim)
  })

  test('--deadline cancels pending work and hard-shuts the remaining VMs', async ({
    sim,
    signal,
  }) => {
    sim.faults.stubbornVm('db-1', 'slow', { cleanShutdownS: 100_000 })
    const result = await runScript('host-shutdown', ['--host', 'h1', '--json', '--deadline', '2'], {
      env: env(sim),
      signal,
    })
    expect(result.code, result.stderr).toBe(0)
    expect(result.summary).toMatchObject({ deadlineReached: true, failed: 0 })
    expect(result.events.some((e) => e.kind === 'deadline')).toBe(true)
    const results = byName(result)
    expect(results['db-1']).toMatchObject({ status: 'ok', action: 'hard_shutdown' })
    expect(results['db-2']).toMatchObject({ status: 'ok', action: 'clean_shutdown' })
    for (const name of ['app-1', 'web-1', 'frozen']) {
      expect(results[name]).toMatchObject({ status: 'ok', action: 'hard_shutdown' })
      expect(callsOf(sim, 'Async.VM.clean_shutdown', name)).toEqual([])
    }
    expect(callsOf(sim, 'task.cancel').length).toBeGreaterThan(0)
    for (const name of ['db-1', 'db-2', 'app-1', 'web-1', 'frozen'])
      expect(powerState(sim, name)).toBe('Halted')
    expectNoLeftovers(sim)
  })

  test('SIGTERM mid-run cancels the tasks, logs out and exits 130', async ({ sim, signal }) => {
    sim.faults.stubbornVm('db-1', 'slow', { cleanShutdownS: 100_000 })
    const run = spawnScript('host-shutdown', ['--host', 'h1', '--json'], { env: env(sim), signal })
    await run.waitForLine((l) => l.kind === 'vm-action' && l.name === 'db-1')
    await expect.poll(() => callsOf(sim, 'Async.VM.clean_shutdown', 'db-1').length).toBe(1)
    run.child.kill('SIGTERM')
    const result = await run.done
    expect(result.code).toBe(130)
    expect(result.summary).toMatchObject({ interrupted: true, exitCode: 130 })
    const results = byName(result)
    expect(results['db-1']).toMatchObject({
      status: 'failed',
      error: expect.stringContaining('interrupted'),
      errorCode: 'INTERRUPTED',
    })
    expect(results['web-1']).toMatchObject({ status: 'skipped', action: 'none' })
    expect(callsOf(sim, 'task.cancel').length).toBeGreaterThan(0)
    expect(powerState(sim, 'db-1')).toBe('Running')
    expect(callsOf(sim, 'Async.VM.clean_shutdown', 'web-1')).toEqual([])
    expectNoLeftovers(sim)
  })

  test('follows HOST_IS_SLAVE from a pool member to the master', async ({ sim, signal }) => {
    const member = pool(sim).hosts[1]!.url
    const result = await runScript('host-shutdown', ['--host', 'h1', '--json'], {
      env: env(sim, member),
      signal,
    })
    expect(result.code, result.stderr).toBe(0)
    expect(sim.calls.some((c) => c.error?.[0] === 'HOST_IS_SLAVE')).toBe(true)
    expect(result.summary).toMatchObject({ ok: 5, failed: 0 })
    expectNoLeftovers(sim)
  })

  test('a dropped connection on a clean shutdown ends in the hard fallback, reported', async ({
    sim,
    signal,
  }) => {
    sim.faults.dropConnections({ method: 'Async.VM.clean_shutdown', times: 1 })
    const result = await runScript('host-shutdown', ['--host', 'h1', '--json'], {
      env: env(sim),
      signal,
    })
    expect(result.code, result.stderr).toBe(0)
    // db-1 is first in the first group: its Async call never reached the server.
    expect(callsOf(sim, 'Async.VM.clean_shutdown', 'db-1')).toEqual([])
    expect(byName(result)['db-1']).toMatchObject({ status: 'ok', action: 'hard_shutdown' })
    const fallback = result.events.find(
      (e) => e.kind === 'vm-action' && e.name === 'db-1' && e.action === 'hard_shutdown'
    )
    expect(fallback?.reason).toMatch(/^clean shutdown failed: /)
    expect(result.summary).toMatchObject({ ok: 5, failed: 0 })
    expectNoLeftovers(sim)
  })

  test('reports a lost server and exits 1 without hanging', async ({ sim, signal }) => {
    sim.faults.stubbornVm('db-1', 'slow', { cleanShutdownS: 100_000 })
    const run = spawnScript('host-shutdown', ['--host', 'h1', '--json'], { env: env(sim), signal })
    await run.waitForLine((l) => l.kind === 'vm-action' && l.name === 'db-1')
    await sim.close()
    const result = await run.done
    expect(result.code).toBe(1)
    expect(result.summary).toMatchObject({ failed: expect.any(Number), exitCode: 1 })
    expect(byName(result)['db-1']).toMatchObject({ status: 'failed' })
  })

  test.for([
    [['--host', 'nope'], /unknown host "nope" \(hosts of this pool: h1, h2\)/],
    [[], /--host is required: the pool has 2 hosts/],
    [['--host', 'h1', '--password', 'x'], /--password is not accepted/],
    [['--host', 'h1', '--clean-timeout', '0'], /expected --clean-timeout to be a positive number/],
  ] as const)(
    'exits 2 on bad input %j, nothing changed',
    async ([args, message], { sim, signal }) => {
      const result = await runScript('host-shutdown', [...args, '--json'], {
        env: env(sim),
        signal,
      })
      expect(result.code).toBe(2)
      expect(result.stderr).toMatch(message)
      expect(result.stderr).not.toMatch(/\n\s+at /)
      expect(result.summary).toMatchObject({
        exitCode: 2,
        error: expect.stringMatching(message),
      })
      expect(mutatingCalls(sim)).toEqual([])
      expect(result.stdout + result.stderr).not.toContain(sim.password)
    }
  )

  test('exits 2 on bad credentials or an unreachable pool', async ({ sim, signal }) => {
    const bad = await runScript('host-shutdown', ['--host', 'h1'], {
      env: { ...env(sim), XAPI_PASSWORD: 'wrong' },
      signal,
    })
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/authentication failed for user root/)
    expect(bad.stderr).not.toContain('wrong')
    const down = await runScript('host-shutdown', ['--host', 'h1'], {
      env: { ...env(sim), XAPI_URL: 'http://127.0.0.1:9' },
      signal,
    })
    expect(down.code).toBe(2)
    expect(mutatingCalls(sim)).toEqual([])
  })

  test('connects over https with a pinned fingerprint or a CA file, password from a file', async ({
    signal,
  }) => {
    const dir = await mkdtemp(join(tmpdir(), 'host-shutdown-tls-'))
    await using sim = await startSimulator({ seed: seed(), timeScale: 0.01, tls: true })
    const passwordFile = join(dir, 'password')
    await writeFile(passwordFile, `${sim.password}\n`, { mode: 0o600 })
    const caFile = join(dir, 'ca.pem')
    await writeFile(caFile, sim.certificate!)
    const base = { XAPI_URL: pool(sim).masterUrl }
    const dry = ['--host', 'h1', '--dry-run', '--json', '--password-file', passwordFile]
    const pinned = await runScript('host-shutdown', [...dry, '--fingerprint', sim.fingerprint!], {
      env: base,
      signal,
    })
    expect(pinned.code, pinned.stderr).toBe(0)
    const withCa = await runScript('host-shutdown', [...dry, '--ca', caFile], { env: base, signal })
    const untrusted = await runScript('host-shutdown', dry, { env: base, signal })
    const wrongPin = await runScript('host-shutdown', [...dry, '--fingerprint', 'ab'.repeat(32)], {
      env: base,
      signal,
    })
    await rm(dir, { recursive: true, force: true })
    // The simulator's certificate names 127.0.0.1 / localhost, so a CA file is enough.
    expect(withCa.code, withCa.stderr).toBe(0)
    expect(untrusted.code).toBe(2)
    expect(wrongPin.code).toBe(2)
    expect(untrusted.stderr.trim().split('\n')).toHaveLength(1)
    expect(untrusted.stderr).toMatch(
      /not trusted .* Pass --fingerprint to pin it, --ca to trust its CA, or --insecure/
    )
    expect(mutatingCalls(sim)).toEqual([])
  })

  test('hook mode: dom0 socket, host from the inventory, timestamped plain lines', async ({
    signal,
  }) => {
    const dir = await mkdtemp(join(tmpdir(), 'host-shutdown-hook-'))
    const socketPath = join(dir, 'xapi')
    await using sim = await startSimulator({ seed: seed(), timeScale: 0.01, socketPath })
    const h1 = pool(sim).hosts.find((h) => h.name === 'h1')!
    const inventory = join(dir, 'xensource-inventory')
    await writeFile(inventory, `PRIMARY_DISK='/dev/sda'\nINSTALLATION_UUID='${h1.uuid}'\n`)
    const result = await runScript('host-shutdown', [], {
      env: {
        XAPI_OPS_DOM0_SOCKET: socketPath,
        XAPI_OPS_INVENTORY: inventory,
        XAPI_PASSWORD: sim.password,
      },
      signal,
    })
    await rm(dir, { recursive: true, force: true })
    expect(result.code, result.stderr).toBe(0)
    const lines = result.stdout.trim().split('\n')
    for (const line of lines) expect(line).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z /)
    expect(result.stdout).toContain(`host h1 (${h1.uuid})`)
    expect(lines.at(-1)).toMatch(/host-shutdown: 5 ok, 1 skipped, 0 failed/)
    expect(powerState(sim, 'web-1')).toBe('Halted')
    expectNoLeftovers(sim)
  })
})
