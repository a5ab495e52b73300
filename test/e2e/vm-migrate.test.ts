import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect } from '@xapi-ops/xapi'
import { startSimulator, type PoolDb, type SimRecord, type Simulator } from '@xapi-ops/xapi-sim'
import { describe, expect, test as base } from 'vitest'
import { runScript, spawnScript, type ScriptResult } from './helpers.js'

// The source's marker of a shutdown for a stream copy (scripts/src/ops/migrate/records.ts).
const SHUTDOWN_MARKER = 'xapi-ops-shut-down-for-migration'
// The copy's mark once verified (the same file).
const VERIFIED_MARKER = 'xapi-ops-migration-verified'

// Seed `two-pools`: pool-a (web-01 and db-01 Running, build-01 Halted, cache-01 Suspended,
// paused-01 Paused) and pool-b, with SRs and networks of the same names.

type Fixture = { sim: Simulator; dir: string }

const test = base.extend<Fixture>({
  // eslint-disable-next-line no-empty-pattern
  sim: async ({}, use) => {
    const sim = await startSimulator({ seed: 'two-pools', timeScale: 0.01 })
    await use(sim)
    await sim.close()
  },
  // eslint-disable-next-line no-empty-pattern
  dir: async ({}, use) => {
    const dir = await mkdtemp(join(tmpdir(), 'vm-migrate-'))
    await use(dir)
    await rm(dir, { recursive: true, force: true })
  },
})

const env = (sim: Simulator) => ({
  XAPI_FROM_URL: sim.pools[0]!.masterUrl,
  XAPI_TO_URL: sim.pools[1]!.masterUrl,
  XAPI_FROM_PASSWORD: sim.password,
  XAPI_TO_PASSWORD: sim.password,
})
const poolA = (sim: Simulator) => sim.db.pool('pool-a')
const poolB = (sim: Simulator) => sim.db.pool('pool-b')

function findVm(db: PoolDb, name: string): [string, SimRecord] | undefined {
  return db.find('VM', (r) => r.name_label === name && !r.is_a_snapshot && !r.is_a_template)
}
function vmsNamed(db: PoolDb, name: string): SimRecord[] {
  return [...db.all('VM').values()].filter((r) => r.name_label === name && !r.is_a_snapshot)
}

/** Content hash of each disk of a VM, by userdevice. */
function diskHashes(db: PoolDb, vmRef: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const vbdRef of db.get(vmRef)!.VBDs as string[]) {
    const vbd = db.get(vbdRef)!
    if (vbd.type !== 'Disk') continue
    const content = db.vdiContent.get(vbd.VDI as string)
    out[vbd.userdevice as string] = content ? content.hash() : 'no content'
  }
  return out
}

/** Networks of pool-b that an import made (xapi marks them with its task). */
function importMadeNetworks(sim: Simulator): string[] {
  return [...poolB(sim).all('network').values()]
    .filter((n) => (n.other_config as Record<string, string>).import_task !== undefined)
    .map((n) => n.name_label as string)
}

function networkNames(db: PoolDb, vmRef: string): string[] {
  return (db.get(vmRef)!.VIFs as string[]).map(
    (vif) => db.get(db.get(vif)!.network as string)!.name_label as string
  )
}

function pendingTasks(sim: Simulator): SimRecord[] {
  return [...poolA(sim).all('task').values(), ...poolB(sim).all('task').values()].filter(
    (t) => t.status === 'pending'
  )
}

/**
 * Runs vm-migrate over two VMs one at a time, transfers throttled, and kills it (SIGKILL) while
 * it copies the second, once the first is done; the transfer throttle is left on.
 */
async function killDuringSecondCopy(
  sim: Simulator,
  args: readonly string[],
  names: readonly string[]
): Promise<{ finished: string; killedOne: string }> {
  sim.faults.transfer.throttleBytesPerSec(4 * 1024 * 1024)
  const run = spawnScript('vm-migrate', args, { env: env(sim) })
  const done = await run.waitForLine((l) => l.kind === 'vm-done')
  expect(done.status).toBe('ok')
  const finished = done.name as string
  const killedOne = names.find((n) => n !== finished)!
  await run.waitForLine((l) => l.kind === 'vm-step' && l.name === killedOne && l.step === 'copying')
  await new Promise((resolve) => setTimeout(resolve, 600))
  run.child.kill('SIGKILL')
  expect((await run.done).signal).toBe('SIGKILL')
  return { finished, killedOne }
}

/** Starts vm-migrate on db-01 (running) by stream and sends `signal` once bytes move. */
async function signalMidCopy(sim: Simulator, signal: NodeJS.Signals): Promise<ScriptResult> {
  const run = spawnScript('vm-migrate', ['--vm', 'db-01', '--method', 'stream', '--json'], {
    env: env(sim),
  })
  await run.waitForLine((l) => l.kind === 'vm-progress' && Number(l.bytes) > 0)
  run.child.kill(signal)
  return run.done
}

/**
 * Sessions `host.migrate_receive` made on pool-b that were not logged out: its calls, less the
 * logouts of sessions that made no other call there (ours make calls; those only log out).
 */
function migrateSessionsLeft(sim: Simulator): number {
  const hostsB = new Set(sim.pools[1]!.hosts.map((h) => h.name))
  const onB = sim.calls.filter((c) => hostsB.has(c.host) && c.outcome === 'success')
  const received = onB.filter((c) => c.method === 'host.migrate_receive').length
  const working = new Set(onB.filter((c) => c.method !== 'session.logout').map((c) => c.session))
  const released = new Set(
    onB
      .filter((c) => c.method === 'session.logout' && !working.has(c.session))
      .map((c) => c.session)
  )
  return received - released.size
}

const resultOf = (result: ScriptResult, name: string) =>
  result.results.find((r) => r.name === name) as Record<string, unknown> | undefined

function describeRun(result: ScriptResult): string {
  return `exit ${result.code}\nstdout:\n${result.stdout}\nstderr:\n${result.stderr}`
}

/** Methods that change something; a failed plan must call none of them. */
const MUTATING = /^(Async\.)?(VM|VDI|VBD|VIF|host)\.(?!get_|assert_)/

describe('vm-migrate over https', () => {
  base(
    '--ca trusts both pools, --insecure skips both; a pin or a CA beside --insecure is exit 2',
    async ({ signal }) => {
      const sim = await startSimulator({ seed: 'two-pools', timeScale: 0.01, tls: true })
      const dir = await mkdtemp(join(tmpdir(), 'vm-migrate-tls-'))
      try {
        const caFile = join(dir, 'ca.pem')
        await writeFile(caFile, sim.certificate!)
        const [srcRef] = findVm(poolA(sim), 'build-01')!
        const before = diskHashes(poolA(sim), srcRef)
        const run = (args: string[]) =>
          runScript('vm-migrate', ['--vm', 'build-01', '--json', ...args], {
            env: env(sim),
            signal,
          })

        const copied = await run(['--method', 'stream', '--ca', caFile])
        expect(copied.code, describeRun(copied)).toBe(0)
        expect(resultOf(copied, 'build-01')).toMatchObject({ status: 'ok', method: 'stream' })
        const [newRef] = findVm(poolB(sim), 'build-01')!
        expect(diskHashes(poolB(sim), newRef)).toEqual(before)

        // Planning needs both pools: a dry run is enough to show who is trusted.
        const insecure = await run(['--dry-run', '--insecure', '--exclude', 'build-01', '--all'])
        expect(insecure.code, describeRun(insecure)).toBe(0)
        const ownCa = await run(['--dry-run', '--from-ca', caFile, '--to-ca', caFile])
        expect(ownCa.code, describeRun(ownCa)).toBe(0)
        // The source was tagged with where it went: the plan says it is done already.
        expect(resultOf(ownCa, 'build-01')).toMatchObject({ status: 'skipped' })
        const untrusted = await run(['--dry-run', '--from-ca', caFile])
        expect(untrusted.code).toBe(2)
        expect(untrusted.stderr).toMatch(/not trusted .* Pass --to-fingerprint to pin it, --to-ca/)
        const contradiction = await run([
          '--dry-run',
          '--insecure',
          '--to-fingerprint',
          sim.fingerprint!,
        ])
        expect(contradiction.code).toBe(2)
        expect(contradiction.stderr).toMatch(/--insecure contradicts --to-fingerprint/)
        expect(pendingTasks(sim)).toEqual([])
      } finally {
        await sim.close()
        await rm(dir, { recursive: true, force: true })
      }
    }
  )
})

describe('vm-migrate', () => {
  test('stream: a halted VM is copied, verified, its disks equal; the source stays halted and tagged', async ({
    sim,
  }) => {
    const [srcRef] = findVm(poolA(sim), 'build-01')!
    const before = diskHashes(poolA(sim), srcRef)
    const result = await runScript(
      'vm-migrate',
      ['--vm', 'build-01', '--method', 'stream', '--json'],
      { env: env(sim) }
    )
    expect(result.code, describeRun(result)).toBe(0)
    const r = resultOf(result, 'build-01')!
    expect(r).toMatchObject({ status: 'ok', method: 'stream', action: 'migrated' })
    const [newRef, copy] = findVm(poolB(sim), 'build-01')!
    expect(copy.uuid).toBe(r.newVm)
    expect(diskHashes(poolB(sim), newRef)).toEqual(before)
    expect(networkNames(poolB(sim), newRef)).toEqual(['Pool-wide network associated with eth0'])
    const source = poolA(sim).get(srcRef)!
    expect(source.power_state).toBe('Halted')
    expect(source.tags).toContain(`migrated-to:pool-b/${copy.uuid}`)
    expect(source.other_config['xapi-ops-migrated-from']).toBeUndefined()
    expect(copy.other_config['xapi-ops-migrated-from']).toBe(source.uuid)
    expect(result.events.some((e) => e.kind === 'plan')).toBe(true)
    expect(pendingTasks(sim)).toEqual([])
  })

  test('stream with sessions that expire on both pools: logged in again, copies whole', async ({
    sim,
  }) => {
    const [buildRef] = findVm(poolA(sim), 'build-01')!
    const [cacheRef] = findVm(poolA(sim), 'cache-01')!
    const before = [diskHashes(poolA(sim), buildRef), diskHashes(poolA(sim), cacheRef)]
    // Every session dies after 15 calls: several times on each side during the run.
    sim.faults.expireSessionsAfter(15)
    const args = '--vm build-01 --vm cache-01 --method stream --concurrency 1 --json'.split(' ')
    const result = await runScript('vm-migrate', args, { env: env(sim) })
    expect(result.code, describeRun(result)).toBe(0)
    expect(
      sim.calls.filter((c) => c.method === 'session.login_with_password').length
    ).toBeGreaterThan(3)
    const after = ['build-01', 'cache-01'].map((name) => {
      const [ref] = findVm(poolB(sim), name)!
      return diskHashes(poolB(sim), ref)
    })
    expect(after).toEqual(before)
    expect(pendingTasks(sim)).toEqual([])
  })

  test('stream of running VMs: shut down, copied, started with --start; VIFs re-pointed by --network-map', async ({
    sim,
  }) => {
    const [srcRef] = findVm(poolA(sim), 'db-01')!
    const before = diskHashes(poolA(sim), srcRef)
    const macs = (poolA(sim).get(srcRef)!.VIFs as string[]).map((v) => poolA(sim).get(v)!.MAC)
    // A server without VIF.move: the VIF is destroyed and created again (same device and MAC).
    sim.faults.failMethod('VIF.move', 'MESSAGE_METHOD_UNKNOWN', ['VIF.move'])
    const result = await runScript(
      'vm-migrate',
      [
        '--vm',
        'db-01',
        '--method',
        'stream',
        '--start',
        '--network-map',
        'VM network=Pool-wide network associated with eth0',
        '--json',
      ],
      { env: env(sim) }
    )
    expect(result.code, describeRun(result)).toBe(0)
    expect(resultOf(result, 'db-01')).toMatchObject({ status: 'ok', method: 'stream' })
    const [newRef, copy] = findVm(poolB(sim), 'db-01')!
    expect(copy.power_state).toBe('Running')
    expect(Object.keys(before)).toHaveLength(2)
    expect(diskHashes(poolB(sim), newRef)).toEqual(before)
    expect(networkNames(poolB(sim), newRef)).toEqual(['Pool-wide network associated with eth0'])
    expect((copy.VIFs as string[]).map((v) => poolB(sim).get(v)!.MAC)).toEqual(macs)
    expect(sim.calls.some((c) => c.method === 'VIF.create')).toBe(true)
    expect(poolA(sim).get(srcRef)!.power_state).toBe('Halted')
    expect(result.events.some((e) => e.kind === 'vm-shutdown' && e.name === 'db-01')).toBe(true)
    expect(importMadeNetworks(sim)).toEqual([])
  })

  test('stream: a network the import had to make is removed once the VIFs moved to the mapped one', async ({
    sim,
  }) => {
    // Neither the name nor the bridge of the source network exists in pool-b: xapi's import
    // makes a network for the VIF (other_config:import_task), which --network-map leaves unused.
    const [lanRef] = poolB(sim).find('network', (n) => n.name_label.startsWith('Pool-wide'))!
    poolB(sim).update(lanRef, { name_label: 'lan-b', bridge: 'xenbr9' })
    const networksBefore = poolB(sim).all('network').size
    const result = await runScript(
      'vm-migrate',
      [
        '--vm',
        'build-01',
        '--method',
        'stream',
        '--network-map',
        'Pool-wide network associated with eth0=lan-b',
        '--json',
      ],
      { env: env(sim) }
    )
    expect(result.code, describeRun(result)).toBe(0)
    const [newRef] = findVm(poolB(sim), 'build-01')!
    expect(networkNames(poolB(sim), newRef)).toEqual(['lan-b'])
    const removed = result.events.filter((e) => e.kind === 'network-cleanup')
    expect(removed).toEqual([
      expect.objectContaining({ name: 'Pool-wide network associated with eth0' }),
    ])
    expect(removed[0]).not.toHaveProperty('error')
    expect(importMadeNetworks(sim)).toEqual([])
    expect(poolB(sim).all('network').size).toBe(networksBefore)
  })

  test('stream: a suspended VM arrives suspended, with its disks', async ({ sim }) => {
    const [srcRef] = findVm(poolA(sim), 'cache-01')!
    const before = diskHashes(poolA(sim), srcRef)
    const result = await runScript(
      'vm-migrate',
      ['--vm', 'cache-01', '--method', 'stream', '--delete-source', '--json'],
      { env: env(sim) }
    )
    expect(result.code, describeRun(result)).toBe(0)
    const [newRef, copy] = findVm(poolB(sim), 'cache-01')!
    expect(copy.power_state).toBe('Suspended')
    expect(diskHashes(poolB(sim), newRef)).toEqual(before)
    expect(findVm(poolA(sim), 'cache-01')).toBeUndefined()
    expect(resultOf(result, 'cache-01')).toMatchObject({ status: 'ok', sourceDeleted: true })
  })

  test('--running skip leaves running VMs alone when they must be streamed', async ({ sim }) => {
    const result = await runScript(
      'vm-migrate',
      ['--vm', 'web-01', '--method', 'stream', '--running', 'skip', '--json'],
      { env: env(sim) }
    )
    expect(result.code, describeRun(result)).toBe(0)
    expect(resultOf(result, 'web-01')).toMatchObject({ status: 'skipped' })
    expect(findVm(poolA(sim), 'web-01')![1].power_state).toBe('Running')
    expect(findVm(poolB(sim), 'web-01')).toBeUndefined()
  })

  test('native: a running VM moves live, a halted one is copied and its source deleted', async ({
    sim,
  }) => {
    const [webRef] = findVm(poolA(sim), 'web-01')!
    const [buildRef] = findVm(poolA(sim), 'build-01')!
    const webBefore = diskHashes(poolA(sim), webRef)
    const buildBefore = diskHashes(poolA(sim), buildRef)
    const result = await runScript(
      'vm-migrate',
      ['--vm', 'web-01', '--vm', 'build-01', '--method', 'native', '--delete-source', '--json'],
      { env: env(sim) }
    )
    expect(result.code, describeRun(result)).toBe(0)
    expect(resultOf(result, 'web-01')).toMatchObject({ status: 'ok', method: 'native' })
    expect(resultOf(result, 'build-01')).toMatchObject({
      status: 'ok',
      method: 'native',
      sourceDeleted: true,
    })
    const [webCopy, web] = findVm(poolB(sim), 'web-01')!
    expect(web.power_state).toBe('Running')
    expect(diskHashes(poolB(sim), webCopy)).toEqual(webBefore)
    const [buildCopy] = findVm(poolB(sim), 'build-01')!
    expect(diskHashes(poolB(sim), buildCopy)).toEqual(buildBefore)
    expect(findVm(poolA(sim), 'web-01')).toBeUndefined()
    expect(findVm(poolA(sim), 'build-01')).toBeUndefined()
    expect(sim.calls.some((c) => c.method === 'VM.assert_can_migrate')).toBe(true)
    expect(pendingTasks(sim)).toEqual([])
    expect(migrateSessionsLeft(sim)).toBe(0)
  })

  test('auto: native where assert_can_migrate passes, else stream', async ({ sim }) => {
    sim.faults.failMethod('VM.assert_can_migrate', 'VM_REQUIRES_SR', ['vm', 'sr'], { times: 1 })
    const result = await runScript(
      'vm-migrate',
      ['--vm', 'build-01', '--vm', 'cache-01', '--concurrency', '1', '--json'],
      { env: env(sim) }
    )
    expect(result.code, describeRun(result)).toBe(0)
    const methods = result.events.filter((e) => e.kind === 'vm-method')
    expect(methods).toHaveLength(2)
    const streamed = methods.find((e) => e.method === 'stream')!
    expect(String(streamed.reason)).toContain('VM_REQUIRES_SR')
    const native = methods.find((e) => e.method === 'native')!
    expect(resultOf(result, streamed.name as string)).toMatchObject({ method: 'stream' })
    expect(resultOf(result, native.name as string)).toMatchObject({ method: 'native' })
    expect(vmsNamed(poolB(sim), 'build-01')).toHaveLength(1)
    expect(vmsNamed(poolB(sim), 'cache-01')).toHaveLength(1)
    // The route not taken and the one taken: both destination sessions logged out.
    expect(sim.calls.filter((c) => c.method === 'host.migrate_receive')).toHaveLength(2)
    expect(migrateSessionsLeft(sim)).toBe(0)
  })

  test('native: TOO_MANY_STORAGE_MIGRATES waits and retries', async ({ sim }) => {
    sim.faults.failMethod('VM.migrate_send', 'TOO_MANY_STORAGE_MIGRATES', ['3'], { times: 2 })
    const result = await runScript(
      'vm-migrate',
      ['--vm', 'build-01', '--method', 'native', '--json'],
      {
        env: env(sim),
      }
    )
    expect(result.code, describeRun(result)).toBe(0)
    expect(resultOf(result, 'build-01')).toMatchObject({ status: 'ok', method: 'native' })
    expect(result.events.filter((e) => e.kind === 'vm-retry')).toHaveLength(2)
    expect(vmsNamed(poolB(sim), 'build-01')).toHaveLength(1)
  })

  test('native: SIGINT cancels migrate_send, nothing is left on the destination', async ({
    sim,
  }) => {
    // A large disk makes the simulated storage migration last a few seconds.
    const [ref, vm] = findVm(poolA(sim), 'build-01')!
    const vbd = poolA(sim).get((vm.VBDs as string[])[0]!)!
    poolA(sim).update(vbd.VDI as string, { physical_utilisation: 50 * 2 ** 30 })
    const run = spawnScript('vm-migrate', ['--vm', 'build-01', '--method', 'native', '--json'], {
      env: env(sim),
    })
    await run.waitForLine((l) => l.kind === 'vm-step' && l.step === 'copying')
    await new Promise((resolve) => setTimeout(resolve, 500))
    run.child.kill('SIGINT')
    const result = await run.done
    expect(result.code, describeRun(result)).toBe(130)
    expect(resultOf(result, 'build-01')).toMatchObject({ status: 'failed', method: 'native' })
    expect(vmsNamed(poolB(sim), 'build-01')).toEqual([])
    expect(poolA(sim).get(ref)!.power_state).toBe('Halted')
    expect(sim.calls.some((c) => c.method === 'task.cancel')).toBe(true)
    await expect.poll(() => pendingTasks(sim)).toEqual([])
  })

  test('native: kill -9 during a live move that then finishes; the rerun adopts the copy', async ({
    sim,
    dir,
  }) => {
    const journal = join(dir, 'journal.json')
    const [ref, vm] = findVm(poolA(sim), 'web-01')!
    const before = diskHashes(poolA(sim), ref)
    const vbd = poolA(sim).get((vm.VBDs as string[])[0]!)!
    poolA(sim).update(vbd.VDI as string, { physical_utilisation: 30 * 2 ** 30 })
    const args = ['--vm', 'web-01', '--method', 'native', '--journal', journal, '--json']
    const first = spawnScript('vm-migrate', args, { env: env(sim) })
    await expect
      .poll(() => Object.values(poolA(sim).get(ref)?.current_operations ?? {}), {
        timeout: 30_000,
      })
      .toContain('migrate_send')
    first.child.kill('SIGKILL')
    await first.done
    // XAPI carries on with the migration on its own.
    await expect.poll(() => findVm(poolA(sim), 'web-01'), { timeout: 30_000 }).toBeUndefined()

    const second = await runScript('vm-migrate', args, { env: env(sim) })
    expect(second.code, describeRun(second)).toBe(0)
    const [copyRef, copy] = findVm(poolB(sim), 'web-01')!
    expect(resultOf(second, 'web-01')).toMatchObject({
      status: 'ok',
      method: 'native',
      newVm: copy.uuid,
    })
    expect(copy.power_state).toBe('Running')
    expect(diskHashes(poolB(sim), copyRef)).toEqual(before)
  })

  test('--dry-run prints the plan and changes nothing', async ({ sim }) => {
    const result = await runScript('vm-migrate', ['--all', '--dry-run', '--json'], {
      env: env(sim),
    })
    expect(result.code, describeRun(result)).toBe(0)
    const plan = result.events.find((e) => e.kind === 'plan') as Record<string, unknown>
    expect((plan.vms as unknown[]).length).toBe(5)
    expect(sim.calls.filter((c) => MUTATING.test(c.method))).toEqual([])
    expect(findVm(poolB(sim), 'build-01')).toBeUndefined()
  })

  test('mapping errors stop the run before anything changes (exit 2)', async ({ sim }) => {
    const badMap = await runScript(
      'vm-migrate',
      ['--vm', 'db-01', '--network-map', 'VM network=no such network', '--json'],
      { env: env(sim) }
    )
    expect(badMap.code, describeRun(badMap)).toBe(2)
    expect(badMap.stderr).toContain('no such network')

    const twice = await runScript(
      'vm-migrate',
      [
        '--vm',
        'db-01',
        '--network-map',
        'VM network=VM network',
        '--network-map',
        'VM network=Pool-wide network associated with eth0',
      ],
      { env: env(sim) }
    )
    expect(twice.code, describeRun(twice)).toBe(2)
    expect(twice.stderr).toContain('source network "VM network" is already mapped to "VM network"')

    const badSr = await runScript('vm-migrate', ['--vm', 'db-01', '--sr', 'nope'], {
      env: env(sim),
    })
    expect(badSr.code, describeRun(badSr)).toBe(2)
    expect(badSr.stderr).toContain('--sr "nope"')

    // A network the destination does not have (by name) and no --network-map for it.
    const [netRef] = poolB(sim).find('network', (n) => n.name_label === 'VM network')!
    poolB(sim).update(netRef, { name_label: 'Production' })
    const unmapped = await runScript('vm-migrate', ['--vm', 'db-01'], { env: env(sim) })
    expect(unmapped.code, describeRun(unmapped)).toBe(2)
    expect(unmapped.stderr).toContain('--network-map')

    const noJournal = await runScript(
      'vm-migrate',
      ['--vm', 'build-01', '--journal', '/nonexistent/dir/journal.json'],
      { env: env(sim) }
    )
    expect(noJournal.code, describeRun(noJournal)).toBe(2)
    expect(noJournal.stderr).toContain('cannot write --journal')

    expect(sim.calls.filter((c) => MUTATING.test(c.method))).toEqual([])
    expect(findVm(poolA(sim), 'db-01')![1].power_state).toBe('Running')
  })

  test('a name clash in the destination is a plan error', async ({ sim }) => {
    const [ref] = findVm(poolB(sim), 'b-app-01')!
    poolB(sim).update(ref, { name_label: 'build-01' })
    const result = await runScript('vm-migrate', ['--vm', 'build-01', '--json'], {
      env: env(sim),
    })
    expect(result.code, describeRun(result)).toBe(2)
    expect(result.summary?.error).toMatch(/name clash/)
    expect(sim.calls.filter((c) => MUTATING.test(c.method))).toEqual([])
  })

  test('--delete-source: a failed verification keeps the source and removes the copy', async ({
    sim,
  }) => {
    // Verification reads the copy's disks with VDI.get_record: make it fail.
    sim.faults.failMethod('VDI.get_record', 'INTERNAL_ERROR', ['injected verification failure'])
    const [srcRef] = findVm(poolA(sim), 'build-01')!
    const result = await runScript(
      'vm-migrate',
      ['--vm', 'build-01', '--method', 'stream', '--delete-source', '--json'],
      { env: env(sim) }
    )
    expect(result.code, describeRun(result)).toBe(1)
    expect(resultOf(result, 'build-01')).toMatchObject({ status: 'failed' })
    expect(String(resultOf(result, 'build-01')!.error)).toContain('injected verification failure')
    const source = poolA(sim).get(srcRef)!
    expect(source.power_state).toBe('Halted')
    expect((source.tags as string[]).some((t) => t.startsWith('migrated-to:'))).toBe(false)
    expect(source.other_config['xapi-ops-migrated-from']).toBeUndefined()
    expect(vmsNamed(poolB(sim), 'build-01')).toEqual([])
  })

  test('SIGINT mid-transfer: 130, task cancelled, partial copy removed, source restarted', async ({
    sim,
  }) => {
    sim.faults.transfer.throttleBytesPerSec(4 * 1024 * 1024)
    const vdisBefore = poolB(sim).all('VDI').size
    const result = await signalMidCopy(sim, 'SIGINT')
    expect(result.code, describeRun(result)).toBe(130)
    expect(result.summary?.interrupted).toBe(true)
    expect(resultOf(result, 'db-01')).toMatchObject({ status: 'failed', errorCode: 'INTERRUPTED' })
    expect(vmsNamed(poolB(sim), 'db-01')).toEqual([])
    expect(poolB(sim).all('VDI').size).toBe(vdisBefore)
    expect(findVm(poolA(sim), 'db-01')![1].power_state).toBe('Running')
    await expect.poll(() => pendingTasks(sim)).toEqual([])
  })

  /** Kills (SIGKILL) a throttled stream copy of db-01 (running) once its bytes move. */
  async function killMidCopyOfRunningVm(sim: Simulator): Promise<void> {
    sim.faults.transfer.throttleBytesPerSec(4 * 1024 * 1024)
    expect((await signalMidCopy(sim, 'SIGKILL')).signal).toBe('SIGKILL')
    const source = findVm(poolA(sim), 'db-01')![1]
    expect(source.power_state).toBe('Halted')
    expect(source.other_config).toHaveProperty([SHUTDOWN_MARKER])
  }

  test('kill -9 after a stream copy shut its source down, no journal: the rerun starts the copy (--start)', async ({
    sim,
  }) => {
    await killMidCopyOfRunningVm(sim)
    sim.faults.transfer.clear()
    // The plan says so: in JSON, and in the table.
    const dry = await runScript('vm-migrate', ['--vm', 'db-01', '--dry-run', '--json'], {
      env: env(sim),
    })
    const plan = dry.events.find((e) => e.kind === 'plan') as unknown as {
      vms: Array<Record<string, unknown>>
    }
    expect(plan.vms[0]).toMatchObject({ name: 'db-01', power: 'Halted', wasRunning: true })
    const table = await runScript('vm-migrate', ['--vm', 'db-01', '--dry-run'], { env: env(sim) })
    expect(table.stdout + table.stderr).toContain('Halted (was Running)')
    const result = await runScript(
      'vm-migrate',
      ['--vm', 'db-01', '--method', 'stream', '--start', '--json'],
      { env: env(sim) }
    )
    expect(result.code, describeRun(result)).toBe(0)
    expect(resultOf(result, 'db-01')).toMatchObject({ status: 'ok', started: true })
    expect(vmsNamed(poolB(sim), 'db-01')).toHaveLength(1)
    const copy = findVm(poolB(sim), 'db-01')![1]
    expect(copy.power_state).toBe('Running')
    expect(copy.other_config).not.toHaveProperty([SHUTDOWN_MARKER])
    const source = findVm(poolA(sim), 'db-01')![1]
    expect(source.power_state).toBe('Halted')
    expect(source.other_config).not.toHaveProperty([SHUTDOWN_MARKER])
  })

  test('kill -9 after a stream copy shut its source down, no journal: a rerun that fails restarts it', async ({
    sim,
  }) => {
    await killMidCopyOfRunningVm(sim)
    const result = await signalMidCopy(sim, 'SIGINT')
    expect(result.code, describeRun(result)).toBe(130)
    expect(vmsNamed(poolB(sim), 'db-01')).toEqual([])
    const source = findVm(poolA(sim), 'db-01')![1]
    expect(source.power_state).toBe('Running')
    expect(source.other_config).not.toHaveProperty([SHUTDOWN_MARKER])
  })

  test('resume finds a copy a crashed run made but did not journal (marker) and replaces it', async ({
    sim,
    dir,
  }) => {
    const journal = join(dir, 'journal.json')
    const args = ['--vm', 'build-01', '--method', 'stream', '--journal', journal, '--json']
    const first = await runScript('vm-migrate', args, { env: env(sim) })
    expect(first.code, describeRun(first)).toBe(0)
    const [srcRef, source] = findVm(poolA(sim), 'build-01')!
    const [, oldCopy] = findVm(poolB(sim), 'build-01')!
    // The state of a crash right after the import: journal at `copying`, source not yet tagged.
    const saved = JSON.parse(await readFile(journal, 'utf8'))
    const entry = saved.vms[source.uuid as string]
    saved.vms[source.uuid as string] = {
      uuid: entry.uuid,
      name: entry.name,
      step: 'copying',
      status: 'in_progress',
      method: 'stream',
      wasRunning: false,
      shutDownByUs: false,
      expect: entry.expect,
      updatedAt: entry.updatedAt,
    }
    await writeFile(journal, JSON.stringify(saved))
    poolA(sim).update(srcRef, { tags: [] })
    // Nor was the copy verified yet.
    const [oldCopyRef] = findVm(poolB(sim), 'build-01')!
    const { [VERIFIED_MARKER]: _verified, ...otherConfig } = oldCopy.other_config as Record<
      string,
      string
    >
    poolB(sim).update(oldCopyRef, { other_config: otherConfig })

    const second = await runScript('vm-migrate', args, { env: env(sim) })
    expect(second.code, describeRun(second)).toBe(0)
    expect(
      second.events.some(
        (e) => e.kind === 'vm-cleanup' && String(e.action).includes(oldCopy.uuid as string)
      )
    ).toBe(true)
    const copies = vmsNamed(poolB(sim), 'build-01')
    expect(copies).toHaveLength(1)
    expect(copies[0]!.uuid).not.toBe(oldCopy.uuid)
    expect(resultOf(second, 'build-01')).toMatchObject({ status: 'ok', newVm: copies[0]!.uuid })
  })

  test('resume after kill -9: done VMs skipped, the half-made copy removed, the rest carried on', async ({
    sim,
    dir,
  }) => {
    const journal = join(dir, 'journal.json')
    const names = ['build-01', 'db-01']
    const hashes = Object.fromEntries(
      names.map((name) => [name, diskHashes(poolA(sim), findVm(poolA(sim), name)![0])])
    )
    const uuids = Object.fromEntries(names.map((name) => [name, findVm(poolA(sim), name)![1].uuid]))
    const args = [
      ...['--vm', 'build-01', '--vm', 'db-01', '--method', 'stream', '--start'],
      ...['--concurrency', '1', '--journal', journal, '--json'],
    ]
    const { finished, killedOne } = await killDuringSecondCopy(sim, args, names)
    const saved = JSON.parse(await readFile(journal, 'utf8'))
    expect(saved.vms[uuids[killedOne]!]).toMatchObject({ step: 'copying', status: 'in_progress' })
    expect(saved.vms[uuids[finished]!]).toMatchObject({ status: 'done' })

    sim.faults.transfer.clear()
    const second = await runScript('vm-migrate', args, { env: env(sim) })
    expect(second.code, describeRun(second)).toBe(0)
    expect(resultOf(second, finished)).toMatchObject({ status: 'skipped' })
    expect(resultOf(second, killedOne)).toMatchObject({ status: 'ok', method: 'stream' })
    for (const name of names) {
      expect(vmsNamed(poolB(sim), name)).toHaveLength(1)
      expect(diskHashes(poolB(sim), findVm(poolB(sim), name)![0])).toEqual(hashes[name])
    }
    // db-01 was running: shut down by the first run, its copy started by the second.
    expect(findVm(poolB(sim), 'db-01')![1].power_state).toBe('Running')
    expect(findVm(poolB(sim), 'build-01')![1].power_state).toBe('Halted')
    const final = JSON.parse(await readFile(journal, 'utf8'))
    for (const name of names) {
      expect(final.vms[uuids[name]!]).toMatchObject({
        status: 'done',
        newVm: findVm(poolB(sim), name)![1].uuid,
      })
    }
    await expect.poll(() => pendingTasks(sim)).toEqual([])
  })

  test('a network an import made is removed by a later run when the batch that made it was killed', async ({
    sim,
    dir,
  }) => {
    // Neither name nor bridge of the source network exists in pool-b: each import makes one.
    const [lanRef] = poolB(sim).find('network', (n) => n.name_label === 'VM network')!
    poolB(sim).update(lanRef, { name_label: 'lan-b', bridge: 'xenbr9' })
    const journal = join(dir, 'journal.json')
    const names = ['web-01', 'db-01']
    const common = [
      ...['--method', 'stream', '--network-map', 'VM network=lan-b'],
      ...['--concurrency', '1', '--journal', journal, '--json'],
    ]
    const { finished, killedOne } = await killDuringSecondCopy(
      sim,
      [...names.flatMap((n) => ['--vm', n]), ...common],
      names
    )
    sim.faults.transfer.clear()
    // The finished copy's VIF is on lan-b; the network its import made stayed behind.
    expect(networkNames(poolB(sim), findVm(poolB(sim), finished)![0])).toEqual(['lan-b'])
    await expect.poll(() => importMadeNetworks(sim)).toEqual(['VM network'])

    // A rerun that copies nothing still removes it: the journal has the import's task.
    const again = await runScript('vm-migrate', ['--vm', finished, ...common], { env: env(sim) })
    expect(again.code, describeRun(again)).toBe(0)
    expect(resultOf(again, finished)).toMatchObject({ status: 'skipped' })
    expect(again.events.filter((e) => e.kind === 'network-cleanup')).toEqual([
      expect.objectContaining({ name: 'VM network' }),
    ])
    expect(importMadeNetworks(sim)).toEqual([])

    const rest = await runScript('vm-migrate', ['--vm', killedOne, ...common], { env: env(sim) })
    expect(rest.code, describeRun(rest)).toBe(0)
    expect(resultOf(rest, killedOne)).toMatchObject({ status: 'ok', method: 'stream' })
    expect(networkNames(poolB(sim), findVm(poolB(sim), killedOne)![0])).toEqual(['lan-b'])
    expect(importMadeNetworks(sim)).toEqual([])
    const saved = JSON.parse(await readFile(journal, 'utf8'))
    const entry = (name: string) => saved.vms[findVm(poolA(sim), name)![1].uuid as string]
    // The tasks of the killed run's imports are gone from the destination too.
    const journaled = Object.values(
      saved.vms as Record<string, { importTasks?: string[] }>
    ).flatMap((e) => e.importTasks ?? [])
    expect(journaled.length).toBeGreaterThan(0)
    expect(journaled.filter((t) => poolB(sim).get(t) !== undefined)).toEqual([])
    expect(entry(finished)).toMatchObject({ status: 'done', importTasks: [expect.any(String)] })
    // The one that made the copy last, after the killed run's (if its import had begun).
    expect(entry(killedOne)).toMatchObject({ status: 'done' })
    const tasks = entry(killedOne).importTasks as string[]
    expect(tasks.length).toBeGreaterThanOrEqual(1)
    expect(tasks.length).toBeLessThanOrEqual(2)
  })
  test("stream: the copy keeps the source VIFs' MAC addresses", async ({ sim }) => {
    const [srcRef] = findVm(poolA(sim), 'build-01')!
    const macs = (poolA(sim).get(srcRef)!.VIFs as string[]).map((v) => poolA(sim).get(v)!.MAC)
    expect(macs.length).toBeGreaterThan(0)
    const result = await runScript(
      'vm-migrate',
      ['--vm', 'build-01', '--method', 'stream', '--json'],
      {
        env: env(sim),
      }
    )
    expect(result.code, describeRun(result)).toBe(0)
    const [, copy] = findVm(poolB(sim), 'build-01')!
    expect((copy.VIFs as string[]).map((v) => poolB(sim).get(v)!.MAC)).toEqual(macs)
  })

  test('a rerun without journal adopts a copy verified by a run that failed after it, never removes it', async ({
    sim,
  }) => {
    // Tagging the source fails once: the copy is verified and kept, the run fails.
    sim.faults.failMethod('VM.add_tags', 'INTERNAL_ERROR', ['boom'], { times: 1 })
    const args = ['--vm', 'build-01', '--method', 'stream', '--json']
    const first = await runScript('vm-migrate', args, { env: env(sim) })
    expect(first.code, describeRun(first)).toBe(1)
    expect(resultOf(first, 'build-01')!.error).toMatch(/the copy is kept; a rerun finishes/)
    const [copyRef, copy] = findVm(poolB(sim), 'build-01')!

    const second = await runScript('vm-migrate', args, { env: env(sim) })
    expect(second.code, describeRun(second)).toBe(0)
    expect(resultOf(second, 'build-01')).toMatchObject({ status: 'ok', newVm: copy.uuid })
    expect(vmsNamed(poolB(sim), 'build-01')).toHaveLength(1)
    expect(poolB(sim).get(copyRef)).toBeDefined()
    expect(
      sim.calls.filter((c) => c.method === 'VM.destroy' || c.method === 'Async.VM.destroy')
    ).toEqual([])
    const [, source] = findVm(poolA(sim), 'build-01')!
    expect(source.tags).toEqual([`migrated-to:pool-b/${String(copy.uuid)}`])

    // The source running again makes the copy out of date: the operator decides.
    const [srcRef] = findVm(poolA(sim), 'build-01')!
    poolA(sim).update(srcRef, { tags: [], power_state: 'Running' })
    const third = await runScript('vm-migrate', [...args, '--running', 'shutdown'], {
      env: env(sim),
    })
    expect(third.code, describeRun(third)).toBe(1)
    expect(resultOf(third, 'build-01')).toMatchObject({ status: 'failed', errorCode: 'STALE_COPY' })
    expect(poolB(sim).get(copyRef)).toBeDefined()
    expect(poolA(sim).get(srcRef)!.power_state).toBe('Running')
  })

  test('--start: a copy that will not start is removed and the source we shut down runs again', async ({
    sim,
  }) => {
    sim.faults.failMethod('VM.start', 'HOST_NOT_ENOUGH_FREE_MEMORY', ['1', '0'], { times: 1 })
    const result = await runScript(
      'vm-migrate',
      ['--vm', 'db-01', '--method', 'stream', '--start', '--json'],
      { env: env(sim) }
    )
    expect(result.code, describeRun(result)).toBe(1)
    expect(resultOf(result, 'db-01')).toMatchObject({
      status: 'failed',
      errorCode: 'HOST_NOT_ENOUGH_FREE_MEMORY',
    })
    expect(resultOf(result, 'db-01')!.error).toMatch(
      /source was started again and the copy removed/
    )
    expect(findVm(poolB(sim), 'db-01')).toBeUndefined()
    const [, source] = findVm(poolA(sim), 'db-01')!
    expect(source.power_state).toBe('Running')
    expect(source.other_config).not.toHaveProperty(SHUTDOWN_MARKER)
  })

  test('--delete-source: snapshots go with the source, a disk another VM uses stays', async ({
    sim,
  }) => {
    const xapi = await connect({
      url: sim.pools[0]!.masterUrl,
      user: 'root',
      password: sim.password,
    })
    const [srcRef, src] = findVm(poolA(sim), 'build-01')!
    const [otherRef] = findVm(poolA(sim), 'web-01')!
    try {
      await xapi.call('VM.snapshot', srcRef, 'build-01 before the move')
      const disk = (src.VBDs as string[])
        .map((r) => poolA(sim).get(r)!)
        .find((vbd) => vbd.type === 'Disk')!.VDI as string
      await xapi.call('VBD.create', {
        VM: otherRef,
        VDI: disk,
        userdevice: '7',
        bootable: false,
        mode: 'RW',
        type: 'Disk',
        unpluggable: true,
        empty: false,
        other_config: {},
        qos_algorithm_type: '',
        qos_algorithm_params: {},
      })
      const snapshotDisks = () =>
        [...poolA(sim).all('VDI').values()].filter(
          (v) => v.is_a_snapshot && String(v.name_label).startsWith('build-01')
        )
      expect(snapshotDisks().length).toBeGreaterThan(0)
      const result = await runScript(
        'vm-migrate',
        ['--vm', 'build-01', '--method', 'stream', '--delete-source', '--json'],
        { env: env(sim) }
      )
      expect(result.code, describeRun(result)).toBe(0)
      expect(resultOf(result, 'build-01')).toMatchObject({
        sourceDeleted: true,
        snapshotsDeleted: 1,
      })
      expect(findVm(poolA(sim), 'build-01')).toBeUndefined()
      expect(vmsNamed(poolA(sim), 'build-01 before the move')).toEqual([])
      expect(snapshotDisks()).toEqual([])
      expect(poolA(sim).get(disk)).toBeDefined()
      expect(
        result.events.some(
          (e) => e.kind === 'vm-cleanup' && /kept: other VMs use it/.test(String(e.action))
        )
      ).toBe(true)
    } finally {
      await xapi.close()
    }
  })

  test('a name clash made on the destination after the plan fails that VM before any change', async ({
    sim,
  }) => {
    sim.faults.transfer.throttleBytesPerSec(8 * 1024 * 1024)
    const run = spawnScript(
      'vm-migrate',
      [
        '--vm',
        'build-01',
        '--vm',
        'web-01',
        '--method',
        'stream',
        '--running',
        'shutdown',
        '--concurrency',
        '1',
        '--json',
      ],
      { env: env(sim) }
    )
    const first = await run.waitForLine((l) => l.kind === 'vm-start')
    const second = first.name === 'build-01' ? 'web-01' : 'build-01'
    const [ref] = poolB(sim).find('VM', (r) => !r.is_a_template && !r.is_control_domain)!
    poolB(sim).update(ref, { name_label: second })
    const result = await run.done
    expect(result.code, describeRun(result)).toBe(1)
    expect(resultOf(result, second)).toMatchObject({ status: 'failed', errorCode: 'NAME_CLASH' })
    expect(vmsNamed(poolB(sim), second)).toHaveLength(1)
    expect(findVm(poolA(sim), second)![1].power_state).toBe(
      second === 'web-01' ? 'Running' : 'Halted'
    )
  })

  test('a journal that cannot be written at the end keeps the report: exit 1, every VM listed', async ({
    sim,
    dir,
  }) => {
    const journalDir = join(dir, 'journal')
    await mkdir(journalDir)
    sim.faults.transfer.throttleBytesPerSec(8 * 1024 * 1024)
    const run = spawnScript(
      'vm-migrate',
      [
        '--vm',
        'build-01',
        '--vm',
        'cache-01',
        '--method',
        'stream',
        '--concurrency',
        '1',
        '--journal',
        join(journalDir, 'j.json'),
        '--json',
      ],
      { env: env(sim) }
    )
    await run.waitForLine((l) => l.kind === 'vm-done')
    await rm(journalDir, { recursive: true, force: true })
    const result = await run.done
    expect(result.code, describeRun(result)).toBe(1)
    expect(result.results).toHaveLength(2)
    expect(result.results.filter((r) => r.status === 'ok')).toHaveLength(1)
    expect(String(result.summary?.error)).toMatch(/cannot write --journal/)
  })

  test('a done VM whose source is gone is reported from the journal; the failing pool is named', async ({
    sim,
    dir,
  }) => {
    const journal = join(dir, 'j.json')
    const args = [
      '--vm',
      'build-01',
      '--method',
      'native',
      '--delete-source',
      '--journal',
      journal,
      '--json',
    ]
    const first = await runScript('vm-migrate', args, { env: env(sim) })
    expect(first.code, describeRun(first)).toBe(0)
    const newVm = resultOf(first, 'build-01')!.newVm
    const again = await runScript(
      'vm-migrate',
      ['--all', '--dry-run', '--journal', journal, '--json'],
      { env: env(sim) }
    )
    expect(again.code, describeRun(again)).toBe(0)
    expect(again.results.find((r) => r.name === 'build-01')).toMatchObject({
      status: 'skipped',
      error: 'already migrated (journal)',
    })
    const bad = await runScript('vm-migrate', ['--all', '--dry-run'], {
      env: { ...env(sim), XAPI_TO_PASSWORD: 'wrong' },
    })
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/destination pool: authentication failed/)
    expect(newVm).toBeDefined()
  })
})
