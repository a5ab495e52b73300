import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startSimulator, type PoolDb, type Simulator } from '@xapi-ops/xapi-sim'
import { describe, expect, test as base } from 'vitest'
import { runScript, spawnScript, type ScriptResult } from './helpers.js'
import { diskHashes, findVm, objectCounts } from './vm-export-helpers.js'

// Seed `two-pools`: the files are exported from pool-a by vm-export, imported into pool-b.

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
    const dir = await mkdtemp(join(tmpdir(), 'vm-import-'))
    await use(dir)
    await rm(dir, { recursive: true, force: true })
  },
})

const poolA = (sim: Simulator): PoolDb => sim.db.pool('pool-a')
const poolB = (sim: Simulator): PoolDb => sim.db.pool('pool-b')
const envOf = (sim: Simulator, pool: number) => ({
  XAPI_URL: sim.pools[pool]!.masterUrl,
  XAPI_PASSWORD: sim.password,
})

function describeRun(r: ScriptResult): string {
  return `exit ${r.code}\nstdout:\n${r.stdout.slice(-3000)}\nstderr:\n${r.stderr.slice(-3000)}`
}

/** Exports VMs of pool-a with vm-export; returns the files by VM name. */
async function exportFromA(
  sim: Simulator,
  dir: string,
  vms: string[],
  compress: 'none' | 'gzip' | 'zstd' = 'none'
): Promise<Record<string, string>> {
  const args = ['--json', '--out', dir, '--compress', compress, ...vms.flatMap((v) => ['--vm', v])]
  const r = await runScript('vm-export', args, { env: envOf(sim, 0) })
  if (r.code !== 0) throw new Error(`vm-export failed: ${describeRun(r)}`)
  return Object.fromEntries(r.results.map((x) => [x.name as string, x.file as string]))
}

function importInto(sim: Simulator, args: string[], signal?: AbortSignal): Promise<ScriptResult> {
  return runScript('vm-import', ['--json', ...args], { env: envOf(sim, 1), signal })
}

describe('vm-import', () => {
  test('round trip: export → import gives the same disks, into the SR named by --sr', async ({
    sim,
    dir,
    signal,
  }) => {
    const files = await exportFromA(sim, dir, ['web-01', 'db-01', 'build-01'], 'zstd')
    const r = await importInto(
      sim,
      [files['web-01']!, files['db-01']!, files['build-01']!, '--sr', 'Shared NFS storage'],
      signal
    )
    expect(r.code, describeRun(r)).toBe(0)
    const sr = poolB(sim).find('SR', (s) => s.name_label === 'Shared NFS storage')![0]
    for (const name of ['web-01', 'db-01', 'build-01']) {
      const result = r.results.find((x) => x.name === name)!
      expect.soft(result).toMatchObject({ status: 'ok', file: files[name] })
      const [newRef, newVm] = findVm(poolB(sim), name)
      expect.soft(result.newVm).toBe(newVm.uuid)
      expect.soft(newVm.power_state).toBe('Halted')
      const [srcRef] = findVm(poolA(sim), name)
      expect.soft(diskHashes(poolB(sim), newRef)).toEqual(diskHashes(poolA(sim), srcRef))
      for (const vbd of newVm.VBDs as string[]) {
        const vdi = poolB(sim).get(poolB(sim).get(vbd)!.VDI as string)
        if (vdi) expect.soft(vdi.SR).toBe(sr)
      }
    }
  })

  test('--restore keeps the uuid, --start starts the VM', async ({ sim, dir, signal }) => {
    const files = await exportFromA(sim, dir, ['build-01'])
    const r = await importInto(sim, [files['build-01']!, '--restore', '--start'], signal)
    expect(r.code, describeRun(r)).toBe(0)
    const source = findVm(poolA(sim), 'build-01')[1]
    expect(r.results[0]).toMatchObject({ status: 'ok', newVm: source.uuid, action: 'import_start' })
    const [, imported] = findVm(poolB(sim), 'build-01')
    expect(imported.uuid).toBe(source.uuid)
    expect(imported.power_state).toBe('Running')
  })

  test('--restore again: the VM already there makes the file fail, no second copy', async ({
    sim,
    dir,
    signal,
  }) => {
    const files = await exportFromA(sim, dir, ['build-01'])
    const first = await importInto(sim, [files['build-01']!, '--restore'], signal)
    expect(first.code, describeRun(first)).toBe(0)
    const before = objectCounts(poolB(sim))
    const again = await importInto(sim, [files['build-01']!, '--restore'], signal)
    expect(again.code, describeRun(again)).toBe(1)
    expect(again.results[0]).toMatchObject({
      status: 'failed',
      errorCode: 'VM_TO_IMPORT_IS_NOT_NEWER_VERSION',
    })
    expect(objectCounts(poolB(sim))).toEqual(before)
  })

  test('--dir imports every .xva, .xva.gz and .xva.zst file of a directory', async ({
    sim,
    dir,
    signal,
  }) => {
    await exportFromA(sim, dir, ['build-01'], 'gzip')
    await exportFromA(sim, dir, ['cache-01'], 'zstd')
    await exportFromA(sim, dir, ['paused-01'], 'none')
    const r = await importInto(sim, ['--dir', dir], signal)
    expect(r.code, describeRun(r)).toBe(0)
    expect(r.results.map((x) => x.name).sort()).toEqual(['build-01', 'cache-01', 'paused-01'])
  })

  test('--dry-run imports nothing, and names the files that cannot be imported', async ({
    sim,
    dir,
    signal,
  }) => {
    const files = await exportFromA(sim, dir, ['build-01'])
    const before = objectCounts(poolB(sim))
    const r = await importInto(sim, [files['build-01']!, '--dry-run'], signal)
    expect(r.code, describeRun(r)).toBe(0)
    expect(r.results[0]).toMatchObject({ status: 'skipped' })
    expect(objectCounts(poolB(sim))).toEqual(before)

    const empty = join(dir, 'empty.xva')
    await writeFile(empty, '')
    const text = join(dir, 'notes.xva.gz')
    await writeFile(text, 'not an archive')
    const bad = await importInto(
      sim,
      [join(dir, 'missing.xva'), dir, empty, text, files['build-01']!, '--dry-run'],
      signal
    )
    expect(bad.code, describeRun(bad)).toBe(1)
    expect(bad.results.map((x) => [x.status, x.errorCode])).toEqual([
      ['failed', 'ENOENT'],
      ['failed', 'EISDIR'],
      ['failed', 'XVA_VERIFICATION_FAILED'],
      ['failed', 'XVA_VERIFICATION_FAILED'],
      ['skipped', undefined],
    ])
    expect(bad.results[2]!.error).toBe('the file is empty')
    expect(objectCounts(poolB(sim))).toEqual(before)
  })

  test('--restore: once xapi reports the import done, the VM is kept (its lookup is retried)', async ({
    sim,
    dir,
    signal,
  }) => {
    const files = await exportFromA(sim, dir, ['build-01'])
    sim.faults.failMethod('VM.get_record', 'INTERNAL_ERROR', ['transient'], { times: 1 })
    const r = await importInto(sim, [files['build-01']!, '--restore'], signal)
    expect(r.code, describeRun(r)).toBe(0)
    const source = findVm(poolA(sim), 'build-01')[1]
    expect(r.results[0]).toMatchObject({ status: 'ok', newVm: source.uuid })
    expect(findVm(poolB(sim), 'build-01')[1].uuid).toBe(source.uuid)
  })

  test('--restore is refused before sending when the VM is there and running, or its MACs are in use', async ({
    sim,
    dir,
    signal,
  }) => {
    // A backup of a running VM is its snapshot's: restored, it would be a second VM with its MACs.
    const files = await exportFromA(sim, dir, ['db-01', 'build-01'])
    const beforeA = objectCounts(poolA(sim))
    const sameMac = await runScript('vm-import', ['--json', files['db-01']!, '--restore'], {
      env: envOf(sim, 0),
      signal,
    })
    expect(sameMac.code, describeRun(sameMac)).toBe(1)
    expect(sameMac.results[0]).toMatchObject({ status: 'failed', errorCode: 'RESTORE_CONFLICT' })
    expect(sameMac.results[0]!.error).toMatch(/^MAC \S+ is in use by VM db-01 \(/)
    expect(sameMac.events.some((e) => e.kind === 'import-start')).toBe(false)
    expect(objectCounts(poolA(sim))).toEqual(beforeA)

    // Restored and running: --restore --force would make xapi skip the VM and keep its new disks.
    const first = await importInto(sim, [files['build-01']!, '--restore', '--start'], signal)
    expect(first.code, describeRun(first)).toBe(0)
    const beforeB = objectCounts(poolB(sim))
    const running = await importInto(sim, [files['build-01']!, '--restore', '--force'], signal)
    expect(running.code, describeRun(running)).toBe(1)
    expect(running.results[0]).toMatchObject({ status: 'failed', errorCode: 'RESTORE_CONFLICT' })
    expect(running.results[0]!.error).toMatch(/is in the pool and Running/)
    expect(objectCounts(poolB(sim))).toEqual(beforeB)
  })

  test('a missing or non-XVA file fails alone: the batch goes on, nothing is left behind', async ({
    sim,
    dir,
    signal,
  }) => {
    const files = await exportFromA(sim, dir, ['build-01'])
    const junk = join(dir, 'junk.xva')
    await writeFile(junk, 'this is not a tar archive\n'.repeat(100))
    const missing = join(dir, 'missing.xva')
    const before = objectCounts(poolB(sim))
    const r = await importInto(sim, [missing, junk, files['build-01']!], signal)
    expect(r.code, describeRun(r)).toBe(1)
    expect(r.results.map((x) => x.status)).toEqual(['failed', 'failed', 'ok'])
    expect(r.results[0]!.error).toMatch(/no such file/)
    expect(r.results[1]!.error).toMatch(/not an XVA archive: it starts neither with ova.xml/)
    expect(r.results.map((x) => x.errorCode)).toEqual(['ENOENT', expect.any(String), undefined])
    expect(objectCounts(poolB(sim)).vms).toBe(before.vms + 1)
  })

  test('an unknown SR is exit 2 before anything is imported', async ({ sim, dir, signal }) => {
    const files = await exportFromA(sim, dir, ['build-01'])
    const before = objectCounts(poolB(sim))
    const r = await importInto(sim, [files['build-01']!, '--sr', 'No such SR'], signal)
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('--sr "No such SR": no SR with that uuid or name')
    expect(objectCounts(poolB(sim))).toEqual(before)
  })

  test('no --sr and no pool default SR is exit 2', async ({ sim, dir, signal }) => {
    const files = await exportFromA(sim, dir, ['build-01'])
    const db = poolB(sim)
    const [poolRef] = db.filter('pool')[0]!
    db.update(poolRef, { default_SR: 'OpaqueRef:NULL' })
    const before = objectCounts(db)
    const r = await importInto(sim, [files['build-01']!], signal)
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('no --sr given and the pool has no default SR')
    expect(objectCounts(db)).toEqual(before)
  })

  test('a corrupt archive is refused locally; with --no-verify the server refuses it and no VM is left', async ({
    sim,
    dir,
    signal,
  }) => {
    const files = await exportFromA(sim, dir, ['build-01'])
    const corrupt = join(dir, 'corrupt.xva')
    const bytes = await readFile(files['build-01']!)
    // A byte inside the first data block (after ova.xml's header and content).
    bytes[bytes.length - 3 * 1024 * 1024]! ^= 0xff
    await writeFile(corrupt, bytes)
    const before = objectCounts(poolB(sim))
    const local = await importInto(sim, [corrupt], signal)
    expect(local.code, describeRun(local)).toBe(1)
    expect(local.results[0]!.error).toMatch(/not a valid XVA archive.*checksum/i)
    expect(local.events.some((e) => e.kind === 'import-start')).toBe(false)

    const remote = await importInto(sim, [corrupt, '--no-verify'], signal)
    expect(remote.code, describeRun(remote)).toBe(1)
    expect(remote.events.some((e) => e.kind === 'import-start')).toBe(true)
    expect(remote.results[0]!.error).toMatch(/IMPORT_ERROR/)
    expect(remote.results[0]!.errorCode).toMatch(/^IMPORT_ERROR/)
    expect(objectCounts(poolB(sim))).toEqual(before)
  })

  test('a dropped connection fails the import and leaves no VM behind', async ({
    sim,
    dir,
    signal,
  }) => {
    const files = await exportFromA(sim, dir, ['web-01'])
    await copyFile(files['web-01']!, join(dir, 'second.xva'))
    sim.faults.transfer.dropAfterBytes(4_000_000, { on: 'import' })
    const before = objectCounts(poolB(sim))
    const r = await importInto(
      sim,
      [files['web-01']!, join(dir, 'second.xva'), '--concurrency', '1'],
      signal
    )
    expect(r.code, describeRun(r)).toBe(1)
    expect(r.results.map((x) => x.status)).toEqual(['failed', 'ok'])
    expect(typeof r.results[0]!.error).toBe('string')
    expect(objectCounts(poolB(sim)).vms).toBe(before.vms + 1)
    expect(objectCounts(poolB(sim)).vdis).toBe(before.vdis + 1)
  })

  test('a failed import with --force leaves neither its VM nor the network it made', async ({
    sim,
    dir,
    signal,
  }) => {
    const files = await exportFromA(sim, dir, ['web-01'])
    // No network of pool-b has the name or bridge of web-01's: the import makes one.
    const db = poolB(sim)
    for (const [ref, net] of db.filter('network')) {
      db.update(ref, {
        name_label: `${String(net.name_label)} (b)`,
        bridge: `b-${String(net.bridge)}`,
      })
    }
    const networks = db.filter('network').length
    sim.faults.transfer.dropAfterBytes(4_000_000, { on: 'import' })
    const before = objectCounts(db)
    const r = await importInto(sim, [files['web-01']!, '--force'], signal)
    expect(r.code, describeRun(r)).toBe(1)
    expect(objectCounts(db)).toEqual(before)
    expect(r.events.filter((e) => e.kind === 'network-cleanup')).toEqual([
      expect.objectContaining({ name: expect.any(String), network: expect.any(String) }),
    ])
    expect(db.filter('network').length).toBe(networks)
  })

  test('a .xva.zst into a host without zstd: sent decompressed, with a warning', async ({
    sim,
    dir,
    signal,
  }) => {
    const files = await exportFromA(sim, dir, ['build-01'], 'zstd')
    sim.faults.transfer.withoutZstd()
    const before = objectCounts(poolB(sim))
    for (const args of [[], ['--no-verify']]) {
      const r = await importInto(sim, [files['build-01']!, ...args], signal)
      expect(r.code, describeRun(r)).toBe(0)
      expect(r.stderr).toMatch(/does not read zstd archives; sending it decompressed/)
      const [newRef] = findVm(poolB(sim), 'build-01')
      expect(diskHashes(poolB(sim), newRef)).toEqual(
        diskHashes(poolA(sim), findVm(poolA(sim), 'build-01')[0])
      )
      // The refused attempt left nothing: one VM more per import.
      expect(objectCounts(poolB(sim)).vms).toBe(before.vms + 1)
      poolB(sim).destroy(newRef)
    }
  })

  test('--retries: a broken upload is cleaned up and sent again', async ({ sim, dir, signal }) => {
    const files = await exportFromA(sim, dir, ['web-01'])
    sim.faults.transfer.dropAfterBytes(4_000_000, { on: 'import' })
    const before = objectCounts(poolB(sim))
    const r = await importInto(
      sim,
      [files['web-01']!, '--retries', '1', '--retry-delay', '0.1'],
      signal
    )
    expect(r.code, describeRun(r)).toBe(0)
    expect(r.results[0]).toMatchObject({ status: 'ok' })
    const retries = r.events.filter((e) => e.kind === 'import-retry')
    expect(retries).toEqual([expect.objectContaining({ attempt: 1, file: files['web-01'] })])
    // One VM and its disk: what the broken attempt made is gone.
    expect(objectCounts(poolB(sim)).vms).toBe(before.vms + 1)
    expect(objectCounts(poolB(sim)).vdis).toBe(before.vdis + 1)
    const bad = await importInto(sim, [files['web-01']!, '--retries', '-1'], signal)
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/--retries to be a non-negative integer/)
  })

  test('SIGINT mid-import: cancelled, no VM left behind, exit 130', async ({
    sim,
    dir,
    signal,
  }) => {
    const files = await exportFromA(sim, dir, ['web-01', 'build-01'])
    sim.faults.transfer.slowImportReader(1024 * 1024)
    const before = objectCounts(poolB(sim))
    const run = spawnScript(
      'vm-import',
      ['--json', files['web-01']!, files['build-01']!, '--concurrency', '1'],
      { env: envOf(sim, 1), signal }
    )
    await run.waitForLine((l) => l.kind === 'import-start')
    await new Promise((resolve) => setTimeout(resolve, 1500))
    run.child.kill('SIGINT')
    const r = await run.done
    expect(r.code, describeRun(r)).toBe(130)
    expect(r.results.map((x) => x.status)).toEqual(['failed', 'skipped'])
    expect(r.results[0]!.error).toMatch(/interrupted/)
    expect(r.results[0]!.errorCode).toBe('INTERRUPTED')
    await expect.poll(() => objectCounts(poolB(sim))).toEqual(before)
  })
})
