import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { startSimulator, type PoolDb, type Simulator } from '@xapi-ops/xapi-sim'
import { describe, expect, test as base } from 'vitest'
import { runScript, spawnScript, type ScriptResult } from './helpers.js'
import {
  diskHashes,
  exec,
  findVm,
  listDir,
  objectCounts,
  readManifest,
  sha256sumCheck,
  verifyFile,
} from './vm-export-helpers.js'

// Seed `small`, pool-a: web-01 (Running, with a snapshot of its own) and db-01 (Running, two
// disks), build-01 (Halted), cache-01 (Suspended), paused-01 (Paused), a template.

type Fixture = { sim: Simulator; dir: string }

const test = base.extend<Fixture>({
  // eslint-disable-next-line no-empty-pattern
  sim: async ({}, use) => {
    const sim = await startSimulator({ seed: 'small', timeScale: 0.01 })
    await use(sim)
    await sim.close()
  },
  // eslint-disable-next-line no-empty-pattern
  dir: async ({}, use) => {
    const dir = await mkdtemp(join(tmpdir(), 'vm-export-'))
    await use(dir)
    await rm(dir, { recursive: true, force: true })
  },
})

const env = (sim: Simulator) => ({ XAPI_URL: sim.pools[0]!.masterUrl, XAPI_PASSWORD: sim.password })
const pool = (sim: Simulator): PoolDb => sim.db.pool('pool-a')

function exportVms(sim: Simulator, args: string[], signal?: AbortSignal): Promise<ScriptResult> {
  return runScript('vm-export', ['--json', ...args], { env: env(sim), signal })
}

/** vm-export with `--json`, its exports throttled to 1 MiB/s (time to interrupt it). */
function spawnThrottled(sim: Simulator, args: string[], signal: AbortSignal) {
  sim.faults.transfer.throttleBytesPerSec(1024 * 1024, { on: 'export' })
  return spawnScript('vm-export', ['--json', ...args], { env: env(sim), signal })
}

/** web-01 exported `--running offline` (throttled), once its transfer started. */
async function offlineExportStarted(sim: Simulator, dir: string, signal: AbortSignal) {
  const [ref] = findVm(pool(sim), 'web-01')
  const run = spawnThrottled(sim, ['--vm', 'web-01', '--running', 'offline', '--out', dir], signal)
  await run.waitForLine((l) => l.kind === 'export-start')
  return { ref, run }
}

function describeRun(r: ScriptResult): string {
  return `exit ${r.code}\nstdout:\n${r.stdout.slice(-3000)}\nstderr:\n${r.stderr.slice(-3000)}`
}

/** Files of `dir` that are not the manifest, the sums or exports listed in the manifest. */
async function strayFiles(dir: string): Promise<string[]> {
  const manifest = await readManifest(dir).catch(() => ({ vms: [] as { file: string }[] }))
  const listed = new Set(['manifest.json', 'SHA256SUMS', ...manifest.vms.map((v) => v.file)])
  return (await listDir(dir)).filter((f) => !listed.has(f))
}

/** build-01's file is a verified `.xva.zst` of its disks, compressed on this machine. */
async function expectClientZstdOfBuild01(sim: Simulator, dir: string, r: ScriptResult) {
  const file = r.results[0]!.file as string
  expect(file.endsWith('.xva.zst')).toBe(true)
  const summary = await verifyFile(file)
  expect(summary.compression).toBe('zstd')
  expect(summary.disks.map((d) => d.hash)).toEqual(
    diskHashes(pool(sim), findVm(pool(sim), 'build-01')[0])
  )
  expect((await readManifest(dir)).vms[0]).toMatchObject({
    compression: 'zstd',
    compressedOn: 'client',
  })
  return summary
}

describe('vm-export over https with a pinned certificate', () => {
  base('exports and verifies', async ({ signal }) => {
    const sim = await startSimulator({ seed: 'small', timeScale: 0.01, tls: true })
    const dir = await mkdtemp(join(tmpdir(), 'vm-export-tls-'))
    try {
      const r = await runScript(
        'vm-export',
        ['--json', '--vm', 'build-01', '--out', dir, '--fingerprint', sim.fingerprint!],
        { env: env(sim), signal }
      )
      expect(r.code, describeRun(r)).toBe(0)
      await verifyFile(r.results[0]!.file as string)
      // Sent to a member with its own certificate: the pinned master vouches for it.
      const member = sim.pools[0]!.hosts[1]!
      expect(member.fingerprint).not.toBe(sim.fingerprint)
      sim.faults.transfer.redirect({ to: member.name, on: 'export' })
      const redirected = await runScript(
        'vm-export',
        [
          '--json',
          '--vm',
          'build-01',
          '--out',
          dir,
          '--overwrite',
          '--fingerprint',
          sim.fingerprint!,
        ],
        { env: env(sim), signal }
      )
      expect(redirected.code, describeRun(redirected)).toBe(0)
      expect(sim.calls.some((c) => c.method === 'host.get_server_certificate')).toBe(true)
      await verifyFile(redirected.results[0]!.file as string)
      sim.faults.clear()
      const wrong = await runScript(
        'vm-export',
        ['--json', '--vm', 'build-01', '--out', dir, '--fingerprint', 'ab'.repeat(32)],
        { env: env(sim), signal }
      )
      expect(wrong.code).toBe(2)
    } finally {
      await sim.close()
      await rm(dir, { recursive: true, force: true })
    }
  })
})

describe('vm-export', () => {
  test('exports every selectable VM, verified, with manifest.json and SHA256SUMS', async ({
    sim,
    dir,
    signal,
  }) => {
    const before = objectCounts(pool(sim))
    const r = await exportVms(sim, ['--all', '--out', dir], signal)
    expect(r.code, describeRun(r)).toBe(0)
    const names = r.results.map((x) => x.name).sort()
    // Templates and snapshots are never selected; the control domain neither.
    expect(names).toEqual(['build-01', 'cache-01', 'db-01', 'paused-01', 'web-01'])
    const manifest = await readManifest(dir)
    expect(manifest.format).toBe('xapi-ops/vm-export/v1')
    for (const result of r.results) {
      expect.soft(result.status).toBe('ok')
      const [ref, vm] = findVm(pool(sim), result.name as string)
      expect.soft(result.vm).toBe(vm.uuid)
      const file = result.file as string
      expect.soft(basename(file)).toBe(`${vm.name_label}_${vm.uuid}.xva`)
      expect.soft((await stat(file)).size).toBe(result.bytes)
      const entry = manifest.vms.find((e) => e.uuid === vm.uuid)!
      expect.soft(entry).toMatchObject({
        name: vm.name_label,
        file: basename(file),
        bytes: result.bytes,
        sha256: result.sha256,
        compression: 'none',
        pool: { name: 'pool-a' },
      })
      expect.soft(typeof entry.time).toBe('string')
      expect.soft((entry.record as { uuid: string }).uuid).toBe(vm.uuid)
      // What was exported is what the VM holds (running VMs: their snapshot, same content).
      const summary = await verifyFile(file)
      expect.soft(summary.disks.map((d) => d.hash)).toEqual(diskHashes(pool(sim), ref))
    }
    expect(await sha256sumCheck(dir)).toContain(': OK')
    expect(await strayFiles(dir)).toEqual([])
    // Snapshots taken for running VMs are gone, with their disks.
    expect(objectCounts(pool(sim))).toEqual(before)
    const snapshotActions = r.results.filter((x) => x.action === 'snapshot').map((x) => x.name)
    expect(snapshotActions.sort()).toEqual(['db-01', 'paused-01', 'web-01'])
    // Running VMs kept running.
    expect(findVm(pool(sim), 'web-01')[1].power_state).toBe('Running')
  })

  test.for(['gzip', 'zstd'] as const)(
    '--compress %s writes a verified compressed archive',
    async (compression, { sim, dir, signal }) => {
      const r = await exportVms(
        sim,
        ['--vm', 'build-01', '--out', dir, '--compress', compression],
        signal
      )
      expect(r.code, describeRun(r)).toBe(0)
      const file = r.results[0]!.file as string
      expect(file.endsWith(compression === 'gzip' ? '.xva.gz' : '.xva.zst')).toBe(true)
      const summary = await verifyFile(file)
      expect(summary.compression).toBe(compression)
      expect(summary.disks.map((d) => d.hash)).toEqual(
        diskHashes(pool(sim), findVm(pool(sim), 'build-01')[0])
      )
      expect((await readManifest(dir)).vms[0]!.compression).toBe(compression)
      await sha256sumCheck(dir)
    }
  )

  test('--compress zstd --compress-on client: raw from the host, zstd here, verified', async ({
    sim,
    dir,
    signal,
  }) => {
    const r = await exportVms(
      sim,
      ['--vm', 'build-01', '--out', dir, '--compress', 'zstd', '--compress-on', 'client'],
      signal
    )
    expect(r.code, describeRun(r)).toBe(0)
    expect(r.events[0]).toMatchObject({ kind: 'plan', compression: 'zstd', compressOn: 'client' })
    const summary = await expectClientZstdOfBuild01(sim, dir, r)
    expect(r.results[0]!.bytes).toBeLessThan(summary.tarBytes)
    await sha256sumCheck(dir)
    // A rerun finds it verified and skips it.
    const again = await exportVms(
      sim,
      ['--vm', 'build-01', '--out', dir, '--compress', 'zstd', '--compress-on', 'client'],
      signal
    )
    expect(again.results[0]).toMatchObject({ status: 'skipped', sha256: r.results[0]!.sha256 })
  })

  test('--compress zstd from a host without zstd: compressed here instead, with a warning', async ({
    sim,
    dir,
    signal,
  }) => {
    sim.faults.transfer.withoutZstd()
    const r = await exportVms(sim, ['--vm', 'build-01', '--out', dir, '--compress', 'zstd'], signal)
    expect(r.code, describeRun(r)).toBe(0)
    expect(r.results[0]).toMatchObject({ status: 'ok' })
    expect(r.results[0]).not.toHaveProperty('compressedOn')
    await expectClientZstdOfBuild01(sim, dir, r)
    expect(r.stderr).toMatch(
      /build-01: the host does not compress with zstd; compressing on this machine/
    )
    expect(r.events.filter((e) => e.kind === 'export-retry')).toEqual([])
    await sha256sumCheck(dir)
    expect(await strayFiles(dir)).toEqual([])
  })

  test('--compress-on client without --compress zstd is a usage error (exit 2)', async ({
    sim,
    dir,
    signal,
  }) => {
    const calls = sim.calls.length
    const r = await exportVms(
      sim,
      ['--vm', 'build-01', '--out', dir, '--compress', 'gzip', '--compress-on', 'client'],
      signal
    )
    expect(r.code, describeRun(r)).toBe(2)
    expect(r.stderr).toMatch(/--compress-on client.*zstd/)
    expect(sim.calls.length).toBe(calls)
    expect(await listDir(dir)).toEqual([])
  })

  test('selection: union of --vm (glob), --tag, less --exclude', async ({ sim, dir, signal }) => {
    const r = await exportVms(
      sim,
      [
        '--vm',
        '*-01',
        '--tag',
        'db',
        '--exclude',
        'web-*',
        '--exclude',
        'paused-01',
        '--out',
        dir,
        '--dry-run',
      ],
      signal
    )
    expect(r.code, describeRun(r)).toBe(0)
    expect(r.results.map((x) => x.name).sort()).toEqual(['build-01', 'cache-01', 'db-01'])
  })

  test('a --vm matching nothing is exit 2 before anything is written', async ({
    sim,
    dir,
    signal,
  }) => {
    const out = join(dir, 'out')
    const r = await exportVms(sim, ['--vm', 'build-01', '--vm', 'nope-*', '--out', out], signal)
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('"nope-*" matched no VM')
    await expect(stat(out)).rejects.toThrow(/ENOENT/)
  })

  test('--dry-run prints the plan and changes nothing', async ({ sim, dir, signal }) => {
    const out = join(dir, 'out')
    const before = objectCounts(pool(sim))
    const r = await exportVms(sim, ['--all', '--out', out, '--dry-run'], signal)
    expect(r.code, describeRun(r)).toBe(0)
    const plan = r.events.find((e) => e.kind === 'plan') as unknown as {
      vms: { name: string; action: string }[]
    }
    expect(plan.vms.find((v) => v.name === 'web-01')?.action).toBe('snapshot')
    expect(plan.vms.find((v) => v.name === 'build-01')?.action).toBe('export')
    expect(r.results.every((x) => x.status === 'skipped')).toBe(true)
    await expect(stat(out)).rejects.toThrow(/ENOENT/)
    expect(objectCounts(pool(sim))).toEqual(before)
    expect(sim.calls.some((c) => /snapshot|export/i.test(c.method))).toBe(false)
  })

  test('--running skip lists running VMs as skipped', async ({ sim, dir, signal }) => {
    const r = await exportVms(
      sim,
      ['--vm', 'web-01', '--vm', 'build-01', '--out', dir, '--running', 'skip'],
      signal
    )
    expect(r.code, describeRun(r)).toBe(0)
    const web = r.results.find((x) => x.name === 'web-01')!
    expect(web.status).toBe('skipped')
    expect(web.error).toMatch(/Running/)
    expect(r.results.find((x) => x.name === 'build-01')!.status).toBe('ok')
    expect(await listDir(dir)).toHaveLength(3)
  })

  test('--running offline shuts the VM down, exports it and starts it again', async ({
    sim,
    dir,
    signal,
  }) => {
    const [ref, vm] = findVm(pool(sim), 'web-01')
    const host = vm.resident_on
    const r = await exportVms(sim, ['--vm', 'web-01', '--out', dir, '--running', 'offline'], signal)
    expect(r.code, describeRun(r)).toBe(0)
    expect(r.events.find((e) => e.kind === 'vm-stopped')).toMatchObject({
      action: 'clean_shutdown',
    })
    expect(r.events.some((e) => e.kind === 'vm-restarted')).toBe(true)
    const after = pool(sim).get(ref)!
    expect(after.power_state).toBe('Running')
    expect(after.resident_on).toBe(host)
    const methods = sim.calls.map((c) => c.method)
    expect(methods).toContain('Async.VM.clean_shutdown')
    expect(methods.some((m) => m.endsWith('VM.snapshot'))).toBe(false)
    await verifyFile(r.results[0]!.file as string)
  })

  test('--running offline starts the VM again when the export fails', async ({
    sim,
    dir,
    signal,
  }) => {
    const [ref] = findVm(pool(sim), 'web-01')
    sim.faults.transfer.dropAfterBytes(200_000, { always: true, on: 'export' })
    const r = await exportVms(
      sim,
      ['--vm', 'web-01', '--out', dir, '--running', 'offline', '--retries', '0'],
      signal
    )
    expect(r.code, describeRun(r)).toBe(1)
    expect(r.results[0]!.status).toBe('failed')
    expect(pool(sim).get(ref)!.power_state).toBe('Running')
    expect(await strayFiles(dir)).toEqual([])
  })

  test('--metadata-only exports ova.xml only, in any power state', async ({ sim, dir, signal }) => {
    const before = objectCounts(pool(sim))
    const r = await exportVms(sim, ['--vm', 'web-01', '--out', dir, '--metadata-only'], signal)
    expect(r.code, describeRun(r)).toBe(0)
    expect(r.results[0]).toMatchObject({ status: 'ok', action: 'export' })
    const summary = await verifyFile(r.results[0]!.file as string, true)
    expect(summary.disks).toEqual([])
    expect((await readManifest(dir)).vms[0]!.metadataOnly).toBe(true)
    expect(objectCounts(pool(sim))).toEqual(before)
  })

  test('a rerun resumes: verified files are skipped, missing or damaged ones exported again', async ({
    sim,
    dir,
    signal,
  }) => {
    const args = ['--vm', 'build-01', '--vm', 'cache-01', '--vm', 'web-01', '--out', dir]
    const first = await exportVms(sim, args, signal)
    expect(first.code, describeRun(first)).toBe(0)
    const files = Object.fromEntries(first.results.map((x) => [x.name, x.file as string]))
    const again = await exportVms(sim, args, signal)
    expect(again.code, describeRun(again)).toBe(0)
    expect(again.results.map((x) => [x.name, x.status, x.error])).toEqual([
      ['web-01', 'skipped', 'already exported'],
      ['build-01', 'skipped', 'already exported'],
      ['cache-01', 'skipped', 'already exported'],
    ])
    expect(sim.calls.filter((c) => c.method.endsWith('VM.snapshot'))).toHaveLength(1)

    await rm(files['build-01']!)
    const damaged = await readFile(files['cache-01']!)
    damaged[damaged.length - 2000]! ^= 0xff
    await writeFile(files['cache-01']!, damaged)
    const third = await exportVms(sim, args, signal)
    expect(third.code, describeRun(third)).toBe(0)
    expect(third.results.map((x) => [x.name, x.status])).toEqual([
      ['web-01', 'skipped'],
      ['build-01', 'ok'],
      ['cache-01', 'ok'],
    ])
    await sha256sumCheck(dir)

    const overwrite = await exportVms(sim, [...args, '--overwrite'], signal)
    expect(overwrite.results.map((x) => x.status)).toEqual(['ok', 'ok', 'ok'])
    await sha256sumCheck(dir)
    expect((await readManifest(dir)).vms).toHaveLength(3)
  })

  test('a verified file missing from the manifest (crash before its update) is adopted', async ({
    sim,
    dir,
    signal,
  }) => {
    const first = await exportVms(sim, ['--vm', 'build-01', '--out', dir], signal)
    expect(first.code, describeRun(first)).toBe(0)
    await rm(join(dir, 'manifest.json'))
    const again = await exportVms(sim, ['--vm', 'build-01', '--out', dir], signal)
    expect(again.results[0]).toMatchObject({ status: 'skipped', sha256: first.results[0]!.sha256 })
    expect((await readManifest(dir)).vms).toHaveLength(1)
  })

  test('a dropped connection is retried with backoff', async ({ sim, dir, signal }) => {
    sim.faults.transfer.dropAfterBytes(300_000, { on: 'export' })
    const before = objectCounts(pool(sim))
    const r = await exportVms(sim, ['--vm', 'web-01', '--out', dir, '--retry-delay', '0.1'], signal)
    expect(r.code, describeRun(r)).toBe(0)
    expect(r.events.filter((e) => e.kind === 'export-retry')).toHaveLength(1)
    await verifyFile(r.results[0]!.file as string)
    expect(objectCounts(pool(sim))).toEqual(before)
    expect(await strayFiles(dir)).toEqual([])
  })

  test('a connection dropped right after its headers, before any byte, is retried too', async ({
    sim,
    dir,
    signal,
  }) => {
    sim.faults.transfer.dropAfterBytes(0, { on: 'export' })
    const r = await exportVms(
      sim,
      ['--vm', 'build-01', '--out', dir, '--retry-delay', '0.1'],
      signal
    )
    expect(r.code, describeRun(r)).toBe(0)
    expect(r.events.filter((e) => e.kind === 'export-retry')).toHaveLength(1)
    await verifyFile(r.results[0]!.file as string)
    expect(await strayFiles(dir)).toEqual([])
  })

  test('sessions that expire during the batch: logged in again, every VM exported', async ({
    sim,
    dir,
    signal,
  }) => {
    // Every session dies after 12 calls: several times over a batch of three.
    sim.faults.expireSessionsAfter(12)
    const r = await exportVms(
      sim,
      [
        '--vm',
        'build-01',
        '--vm',
        'cache-01',
        '--vm',
        'web-01',
        '--out',
        dir,
        '--concurrency',
        '1',
      ],
      signal
    )
    expect(r.code, describeRun(r)).toBe(0)
    expect(r.results.map((x) => x.status)).toEqual(['ok', 'ok', 'ok'])
    const logins = sim.calls.filter((c) => c.method === 'session.login_with_password')
    expect(logins.length).toBeGreaterThan(2)
    for (const x of r.results) await verifyFile(x.file as string)
    expect(await strayFiles(dir)).toEqual([])
  })

  test('a connection that keeps dropping fails the VM, the batch goes on', async ({
    sim,
    dir,
    signal,
  }) => {
    sim.faults.transfer.dropAfterBytes(6_000_000, { always: true, on: 'export' })
    const before = objectCounts(pool(sim))
    const r = await exportVms(
      sim,
      [
        '--vm',
        'web-01',
        '--vm',
        'cache-01',
        '--out',
        dir,
        '--retries',
        '1',
        '--retry-delay',
        '0.1',
      ],
      signal
    )
    expect(r.code, describeRun(r)).toBe(1)
    const web = r.results.find((x) => x.name === 'web-01')!
    expect(web.status).toBe('failed')
    expect(typeof web.error).toBe('string')
    expect(r.events.filter((e) => e.kind === 'export-retry' && e.name === 'web-01')).toHaveLength(1)
    // cache-01 is small enough to get through before the drop.
    expect(r.results.find((x) => x.name === 'cache-01')!.status).toBe('ok')
    expect(await strayFiles(dir)).toEqual([])
    expect(objectCounts(pool(sim))).toEqual(before)
  })

  test('a corrupt block fails verification: retried, never renamed to its final name', async ({
    sim,
    dir,
    signal,
  }) => {
    sim.faults.transfer.corruptBlock(0, 1, { times: 1 })
    const r = await exportVms(
      sim,
      ['--vm', 'build-01', '--out', dir, '--retry-delay', '0.1'],
      signal
    )
    expect(r.code, describeRun(r)).toBe(0)
    const retry = r.events.find((e) => e.kind === 'export-retry')
    expect(String(retry?.error)).toMatch(/checksum/i)
    await verifyFile(r.results[0]!.file as string)

    sim.faults.transfer.corruptBlock(0, 1)
    const out = join(dir, 'again')
    const bad = await exportVms(
      sim,
      ['--vm', 'build-01', '--out', out, '--retries', '1', '--retry-delay', '0.1'],
      signal
    )
    expect(bad.code, describeRun(bad)).toBe(1)
    expect(String(bad.results[0]!.error)).toMatch(/verification.*checksum/i)
    expect(bad.results[0]!.errorCode).toBe('XVA_VERIFICATION_FAILED')
    expect(await listDir(out)).toEqual([])
  })

  test('an XAPI error fails that VM only', async ({ sim, dir, signal }) => {
    sim.faults.failMethod('VM.snapshot', 'SR_FULL', ['0', '0'])
    const before = objectCounts(pool(sim))
    const r = await exportVms(sim, ['--vm', 'web-01', '--vm', 'build-01', '--out', dir], signal)
    expect(r.code, describeRun(r)).toBe(1)
    expect(r.results.find((x) => x.name === 'web-01')).toMatchObject({
      status: 'failed',
      error: expect.stringMatching(/^SR_FULL/),
      errorCode: 'SR_FULL',
    })
    expect(r.results.find((x) => x.name === 'build-01')!.status).toBe('ok')
    expect(objectCounts(pool(sim))).toEqual(before)
  })

  test('unwritable --out is exit 2 before anything changes', async ({ sim, dir, signal }) => {
    const file = join(dir, 'a-file')
    await writeFile(file, 'x')
    const r = await exportVms(sim, ['--all', '--out', file], signal)
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/--out .* (is not a directory|cannot create)/)
    const ro = join(dir, 'ro')
    await mkdir(ro)
    const mounted = await exec('mount', ['-t', 'tmpfs', '-o', 'ro,size=1m', 'tmpfs', ro]).then(
      () => true,
      () => false
    )
    if (mounted) {
      try {
        const r2 = await exportVms(sim, ['--all', '--out', ro], signal)
        expect(r2.code).toBe(2)
        expect(r2.stderr).toMatch(/not writable.*EROFS|EROFS/)
      } finally {
        await exec('umount', [ro])
      }
    } else {
      console.warn('skipped the read-only mount case: mount is not permitted here')
    }
    expect(sim.calls.some((c) => c.method.endsWith('VM.snapshot'))).toBe(false)
  })

  describe('full disk (tmpfs of 8 MiB; needs mount)', () => {
    test('the free-space check refuses an export that cannot fit, before it starts', async ({
      sim,
      dir,
      signal,
    }) => {
      const out = join(dir, 'small')
      await mkdir(out)
      const mounted = await exec('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', out]).then(
        () => true,
        () => false
      )
      if (!mounted) return console.warn('skipped: mount is not permitted here')
      try {
        const before = objectCounts(pool(sim))
        const r = await exportVms(sim, ['--vm', 'db-01', '--vm', 'cache-01', '--out', out], signal)
        expect(r.code, describeRun(r)).toBe(1)
        expect(r.results.find((x) => x.name === 'db-01')).toMatchObject({
          status: 'failed',
          error: expect.stringMatching(/not enough space/),
        })
        expect(r.results.find((x) => x.name === 'cache-01')!.status).toBe('ok')
        expect(objectCounts(pool(sim))).toEqual(before)
        expect(await strayFiles(out)).toEqual([])
      } finally {
        await exec('umount', [out])
      }
    })

    test('a disk that fills up mid-write fails that VM with no partial file', async ({
      sim,
      dir,
      signal,
    }) => {
      const out = join(dir, 'small')
      await mkdir(out)
      const mounted = await exec('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', out]).then(
        () => true,
        () => false
      )
      if (!mounted) return console.warn('skipped: mount is not permitted here')
      try {
        // Understate the disks' physical utilisation so that the free-space check lets it start.
        for (const [ref] of pool(sim).filter('VDI'))
          pool(sim).update(ref, { physical_utilisation: 0 })
        const before = objectCounts(pool(sim))
        const r = await exportVms(sim, ['--vm', 'web-01', '--out', out], signal)
        expect(r.code, describeRun(r)).toBe(1)
        expect(r.results[0]).toMatchObject({
          status: 'failed',
          error: expect.stringMatching(/ENOSPC|no space/i),
          errorCode: 'ENOSPC',
        })
        expect(r.events.some((e) => e.kind === 'export-retry')).toBe(false)
        expect(await listDir(out)).toEqual([])
        expect(objectCounts(pool(sim))).toEqual(before)
      } finally {
        await exec('umount', [out])
      }
    })
  })

  test('SIGINT mid-batch: in-flight exports cancelled and cleaned up, queued ones skipped, exit 130', async ({
    sim,
    dir,
    signal,
  }) => {
    const before = objectCounts(pool(sim))
    const run = spawnThrottled(
      sim,
      ['--vm', 'web-01', '--vm', 'db-01', '--vm', 'build-01', '--concurrency', '1', '--out', dir],
      signal
    )
    await run.waitForLine((l) => l.kind === 'export-start')
    await new Promise((resolve) => setTimeout(resolve, 500))
    run.child.kill('SIGINT')
    const r = await run.done
    expect(r.code, describeRun(r)).toBe(130)
    expect(r.summary).toMatchObject({ interrupted: true })
    expect(r.results.map((x) => x.status)).toEqual(['failed', 'skipped', 'skipped'])
    expect(String(r.results[0]!.error)).toMatch(/interrupted/)
    expect(r.results[0]!.errorCode).toBe('INTERRUPTED')
    expect(await listDir(dir)).toEqual([])
    expect(objectCounts(pool(sim))).toEqual(before)
    expect(sim.calls.filter((c) => c.method === 'Async.VM.snapshot')).toHaveLength(1)
  })

  test('SIGINT during an offline export: the VM is started again, exit 130', async ({
    sim,
    dir,
    signal,
  }) => {
    const { ref, run } = await offlineExportStarted(sim, dir, signal)
    await new Promise((resolve) => setTimeout(resolve, 500))
    run.child.kill('SIGINT')
    const r = await run.done
    expect(r.code, describeRun(r)).toBe(130)
    expect(r.events.some((e) => e.kind === 'vm-restarted')).toBe(true)
    expect(pool(sim).get(ref)!.power_state).toBe('Running')
    expect(await listDir(dir)).toEqual([])
  })

  test('kill -9 mid-export: the next run into the same --out destroys the snapshot left behind', async ({
    sim,
    dir,
    signal,
  }) => {
    const [ref] = findVm(pool(sim), 'web-01')
    const snapshotsBefore = [...(pool(sim).get(ref)!.snapshots as string[])]
    const run = spawnThrottled(sim, ['--vm', 'web-01', '--out', dir], signal)
    const taken = await run.waitForLine((l) => l.kind === 'snapshot')
    await run.waitForLine((l) => l.kind === 'export-start')
    run.child.kill('SIGKILL')
    expect((await run.done).signal).toBe('SIGKILL')
    const left = (pool(sim).get(ref)!.snapshots as string[]).filter(
      (s) => !snapshotsBefore.includes(s)
    )
    expect(left.map((s) => pool(sim).get(s)!.uuid)).toEqual([taken.snapshot])
    expect((await listDir(dir)).filter((f) => f.startsWith('.vm-export-pending-'))).toHaveLength(1)

    sim.faults.transfer.clear()
    // A dry run only says so.
    const dry = await exportVms(sim, ['--vm', 'web-01', '--out', dir, '--dry-run'], signal)
    expect(dry.code, describeRun(dry)).toBe(0)
    expect(dry.stderr).toContain(`snapshot ${String(taken.snapshot)} taken for an export`)
    expect(pool(sim).get(ref)!.snapshots).toEqual([...snapshotsBefore, ...left])

    const r = await exportVms(sim, ['--vm', 'web-01', '--out', dir], signal)
    expect(r.code, describeRun(r)).toBe(0)
    expect(r.events).toContainEqual(
      expect.objectContaining({
        kind: 'leftover',
        name: 'web-01',
        action: `snapshot ${String(taken.snapshot)} destroyed`,
      })
    )
    expect(pool(sim).get(ref)!.snapshots).toEqual(snapshotsBefore)
    expect(pool(sim).has('VM', left[0]!)).toBe(false)
    expect(await strayFiles(dir)).toEqual([])
    expect(r.results[0]).toMatchObject({ status: 'ok' })
  })

  test('kill -9 during an offline export: the next run starts the VM again first', async ({
    sim,
    dir,
    signal,
  }) => {
    const { ref, run } = await offlineExportStarted(sim, dir, signal)
    const parts = async () => (await listDir(dir)).filter((f) => f.endsWith('.part'))
    await expect.poll(parts).toHaveLength(1)
    run.child.kill('SIGKILL')
    expect((await run.done).signal).toBe('SIGKILL')
    expect(pool(sim).get(ref)!.power_state).toBe('Halted')
    expect(await parts()).toHaveLength(1)

    sim.faults.transfer.clear()
    // Exporting another VM into that directory is enough.
    const r = await exportVms(sim, ['--vm', 'build-01', '--out', dir], signal)
    expect(r.code, describeRun(r)).toBe(0)
    expect(r.events).toContainEqual(
      expect.objectContaining({ kind: 'leftover', name: 'web-01', action: 'started again' })
    )
    expect(pool(sim).get(ref)!.power_state).toBe('Running')
    // The archive it was writing went too.
    expect(await strayFiles(dir)).toEqual([])
  })

  test('at most 2 exports per host, --concurrency in all', async ({ sim, dir, signal }) => {
    sim.faults.transfer.throttleBytesPerSec(8 * 1024 * 1024, { on: 'export' })
    // web-01 and paused-01 run on xcp-a1; halted build-01 and suspended cache-01 are served by the master (xcp-a1) too.
    const r = await exportVms(sim, ['--all', '--out', dir, '--concurrency', '4'], signal)
    expect(r.code, describeRun(r)).toBe(0)
    const plan = r.events.find((e) => e.kind === 'plan') as unknown as {
      vms: { name: string; host: string }[]
    }
    const hostOf = new Map(plan.vms.map((v) => [v.name, v.host]))
    let maxTotal = 0
    const perHost = new Map<string, number>()
    let maxPerHost = 0
    let total = 0
    // Replay start/end events in order to measure overlap.
    const open = new Set<string>()
    for (const e of r.events) {
      const name = e.name as string
      if (e.kind === 'export-start' && !open.has(name)) {
        open.add(name)
        total++
        const h = hostOf.get(name)!
        perHost.set(h, (perHost.get(h) ?? 0) + 1)
        maxTotal = Math.max(maxTotal, total)
        maxPerHost = Math.max(maxPerHost, perHost.get(h)!)
      } else if ((e.kind === 'export-done' || e.kind === 'export-failed') && open.delete(name)) {
        total--
        const h = hostOf.get(name)!
        perHost.set(h, perHost.get(h)! - 1)
      }
    }
    expect(maxPerHost).toBeLessThanOrEqual(2)
    expect(maxTotal).toBeLessThanOrEqual(4)
    expect(maxTotal).toBeGreaterThanOrEqual(2)
  })

  test('follows a redirect to the pool member that serves the export', async ({
    sim,
    dir,
    signal,
  }) => {
    sim.faults.transfer.redirect({ to: 'xcp-a2', times: 1, on: 'export' })
    const r = await exportVms(sim, ['--vm', 'build-01', '--out', dir], signal)
    expect(r.code, describeRun(r)).toBe(0)
    await verifyFile(r.results[0]!.file as string)
  })

  test('without a terminal: plain timestamped progress lines', async ({ sim, dir, signal }) => {
    sim.faults.transfer.throttleBytesPerSec(8 * 1024 * 1024, { on: 'export' })
    const r = await runScript(
      'vm-export',
      ['--vm', 'web-01', '--out', dir, '--progress-interval', '0.5'],
      { env: env(sim), signal }
    )
    expect(r.code, describeRun(r)).toBe(0)
    const lines = r.stdout.split('\n').filter((l) => l !== '')
    expect(lines.every((l) => /^\d{4}-\d\d-\d\dT[\d:.]+Z /.test(l))).toBe(true)
    expect(
      lines.some((l) => / web-01: [\d.]+ (KiB|MiB)( \(\d+%\))?, [\d.]+ \w+\/s, ETA /.test(l))
    ).toBe(true)
    expect(lines.some((l) => /overall: \d\/1 VM\(s\) done/.test(l))).toBe(true)
    expect(lines.at(-1)).toMatch(/vm-export: 1 ok, 0 skipped, 0 failed \(exit 0\)$/)
  })

  test('--json progress events while transferring', async ({ sim, dir, signal }) => {
    sim.faults.transfer.throttleBytesPerSec(4 * 1024 * 1024, { on: 'export' })
    const r = await exportVms(sim, ['--vm', 'web-01', '--out', dir], signal)
    expect(r.code, describeRun(r)).toBe(0)
    const progress = r.events.filter((e) => e.kind === 'export-progress')
    expect(progress.length).toBeGreaterThan(0)
    expect(progress.at(-1)).toMatchObject({ name: 'web-01', bytes: expect.any(Number) })
    expect(r.events.some((e) => e.kind === 'progress')).toBe(true)
  })
})
