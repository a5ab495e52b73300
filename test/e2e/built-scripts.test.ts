import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { BUNDLED_SCRIPTS, bundleScripts } from '@xapi-ops/scripts/build'
import { startSimulator, type PoolDb, type Simulator } from '@xapi-ops/xapi-sim'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { REPO_ROOT, runScript } from './helpers.js'

// The scripts as `npm run build` makes them (one file each, started by their shebang), against
// the seed `two-pools`: what the tsx-run scripts do is tested elsewhere; here, that the built
// ones carry all of it, native addons (XXH64, zstd) included.

let sim: Simulator
let built: string
let work: string
const executable = (name: string) => join(built, `${name}.mjs`)

beforeAll(async () => {
  // Inside the repository, so that the native addons left outside resolve from node_modules.
  const cache = join(REPO_ROOT, 'node_modules', '.cache')
  await mkdir(cache, { recursive: true })
  built = await mkdtemp(join(cache, 'xapi-ops-built-'))
  work = await mkdtemp(join(cache, 'xapi-ops-built-work-'))
  await bundleScripts(built)
  sim = await startSimulator({ seed: 'two-pools', timeScale: 0.01 })
})

afterAll(async () => {
  await sim?.close()
  await rm(built, { recursive: true, force: true })
  await rm(work, { recursive: true, force: true })
})

const poolA = (): PoolDb => sim.db.pool('pool-a')
const poolB = (): PoolDb => sim.db.pool('pool-b')
const vmNamed = (db: PoolDb, name: string) =>
  db.find('VM', (r) => r.name_label === name && !r.is_a_snapshot && !r.is_a_template)

describe('built scripts', () => {
  test.each(BUNDLED_SCRIPTS)('%s --help', async (name) => {
    const r = await runScript(name, ['--help'], { executable: executable(name) })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout.split('\n')[0]).toBe(name)
    expect(r.stdout).toContain('--concurrency')
  })

  test('vm-migrate --method stream copies a VM to the other pool', async () => {
    const r = await runScript('vm-migrate', ['--json', '--vm', 'build-01', '--method', 'stream'], {
      executable: executable('vm-migrate'),
      env: {
        XAPI_FROM_URL: sim.pools[0]!.masterUrl,
        XAPI_TO_URL: sim.pools[1]!.masterUrl,
        XAPI_FROM_PASSWORD: sim.password,
        XAPI_TO_PASSWORD: sim.password,
      },
    })
    expect(r.code, r.stderr).toBe(0)
    expect(r.results[0]).toMatchObject({ name: 'build-01', status: 'ok', method: 'stream' })
    const newVm = r.results[0]!.newVm as string
    expect(poolB().find('VM', (v) => v.uuid === newVm)).toBeDefined()
    // The source stays, halted, tagged with where it went.
    expect(vmNamed(poolA(), 'build-01')![1].tags).toContain(`migrated-to:pool-b/${newVm}`)
  })

  test('vm-export --compress zstd, then vm-import of that file into the other pool', async () => {
    const exported = await runScript(
      'vm-export',
      ['--json', '--vm', 'build-01', '--out', work, '--compress', 'zstd'],
      {
        executable: executable('vm-export'),
        env: { XAPI_URL: sim.pools[0]!.masterUrl, XAPI_PASSWORD: sim.password },
      }
    )
    expect(exported.code, exported.stderr).toBe(0)
    const file = exported.results[0]!.file as string
    expect(file).toMatch(/\.xva\.zst$/)

    const imported = await runScript('vm-import', ['--json', file], {
      executable: executable('vm-import'),
      env: { XAPI_URL: sim.pools[1]!.masterUrl, XAPI_PASSWORD: sim.password },
    })
    expect(imported.code, imported.stderr).toBe(0)
    const newVm = imported.results[0]!.newVm as string
    expect(poolB().find('VM', (r) => r.uuid === newVm)?.[1].name_label).toBe('build-01')
  })
})
