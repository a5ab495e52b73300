import { execFile } from 'node:child_process'
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startSimulator, type Simulator } from '../src/index.js'

/*
 * Python's classic XenAPI.py (Citrix, shipped in Debian's python3-os-xenapi) against the simulator.
 * The file is extracted at test time (`apt-get download` + `dpkg-deb -x`; nothing is installed).
 * Without python3, apt or network the suite is skipped with the reason printed.
 */

const run = promisify(execFile)

async function findFile(dir: string, name: string): Promise<string | undefined> {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    if (e.isDirectory()) {
      const hit = await findFile(p, name)
      if (hit) return hit
    } else if (e.name === name) return p
  }
  return undefined
}

async function fetchXenApiPy(dir: string): Promise<{ dir: string } | { reason: string }> {
  try {
    await run('python3', ['--version'])
  } catch {
    return { reason: 'python3 is not available' }
  }
  try {
    await run('apt-get', ['download', 'python3-os-xenapi'], { cwd: dir, timeout: 60_000 })
    const deb = (await readdir(dir)).find((f) => f.endsWith('.deb'))
    if (!deb) return { reason: 'apt-get download produced no .deb' }
    await run('dpkg-deb', ['-x', join(dir, deb), join(dir, 'x')])
    const file = await findFile(join(dir, 'x'), 'XenAPI.py')
    if (!file) return { reason: 'XenAPI.py not found in python3-os-xenapi' }
    return { dir: file.slice(0, -'/XenAPI.py'.length) }
  } catch (e) {
    return {
      reason: `could not fetch python3-os-xenapi with apt-get (${(e as Error).message.split('\n')[0]})`,
    }
  }
}

const DRIVER = `
import json, sys
sys.path.insert(0, sys.argv[1])
import XenAPI
cmd = json.loads(sys.argv[2])
out = {}
s = XenAPI.Session(cmd['url'])
try:
    s.xenapi.login_with_password(cmd['user'], cmd['password'], '1.0', 'XenAPI.py fidelity test')
except XenAPI.Failure as e:
    print(json.dumps({'failure': e.details})); sys.exit(0)
out['api_version'] = s.API_version
try:
    for i in range(cmd.get('calls', 1)):
        recs = s.xenapi.VM.get_all_records()
    out['vms'] = sorted((r['name_label'], r['power_state']) for r in recs.values())
    out['by_name'] = s.xenapi.VM.get_by_name_label('web-01')
    try:
        s.xenapi.VM.get_record('OpaqueRef:nope')
    except XenAPI.Failure as e:
        out['handle_invalid'] = e.details
    s.xenapi.session.logout()
except XenAPI.Failure as e:
    out['failure'] = e.details
except Exception as e:
    out['fault'] = str(e)
print(json.dumps(out))
`

const tmp = await mkdtemp(join(tmpdir(), 'xenapi-py-'))
const xenapi = await fetchXenApiPy(tmp)
if ('reason' in xenapi)
  console.warn(`[xapi-sim] skipping the XenAPI.py fidelity tests: ${xenapi.reason}`)

describe.skipIf('reason' in xenapi)('Python XenAPI.py against the simulator', () => {
  let sim: Simulator
  beforeAll(async () => {
    sim = await startSimulator({ seed: 'small', timeScale: 0.001 })
    await writeFile(join(tmp, 'driver.py'), DRIVER)
  })
  afterAll(async () => {
    await sim.close()
    await rm(tmp, { recursive: true, force: true })
  })

  async function py(url: string, extra: Record<string, unknown> = {}) {
    const { stdout } = await run('python3', [
      join(tmp, 'driver.py'),
      (xenapi as { dir: string }).dir,
      JSON.stringify({ url, user: sim.user, password: sim.password, ...extra }),
    ])
    return JSON.parse(stdout.trim().split('\n').at(-1)!)
  }

  it('logs in (API version from pool/host), lists VMs, meets HANDLE_INVALID, logs out', async () => {
    const out = await py(sim.pools[0]!.masterUrl)
    expect(out.api_version).toBe('2.21')
    const names = out.vms.map(([n]: [string]) => n)
    expect(names).toEqual(
      expect.arrayContaining(['web-01', 'db-01', 'build-01', 'Debian 12 template'])
    )
    expect(out.vms).toContainEqual(['web-01', 'Running'])
    expect(out.by_name).toHaveLength(1)
    expect(out.handle_invalid).toEqual(['HANDLE_INVALID', 'VM', 'OpaqueRef:nope'])
    expect(sim.calls.some((c) => c.method === 'session.logout' && c.outcome === 'success')).toBe(
      true
    )
  })

  it('meets HOST_IS_SLAVE on a supporter, with the master address', async () => {
    const out = await py(sim.pools[0]!.hosts[1]!.url)
    expect(out.failure).toEqual(['HOST_IS_SLAVE', new URL(sim.pools[0]!.masterUrl).host])
  })

  it('meets SESSION_INVALID and re-logs in by itself (XenAPI.py retries up to 3 times)', async () => {
    sim.faults.expireSessionsAfter(6) // login's own API-version calls use 4
    const before = sim.calls.length
    const out = await py(sim.pools[0]!.masterUrl, { calls: 5 })
    sim.faults.clear()
    expect(out.vms.length).toBeGreaterThan(0)
    const mine = sim.calls.slice(before)
    expect(mine.some((c) => c.error?.[0] === 'SESSION_INVALID')).toBe(true)
    expect(mine.filter((c) => c.method === 'session.login_with_password').length).toBeGreaterThan(1)
  })

  it('gives up after 3 SESSION_INVALID in a row', async () => {
    sim.faults.expireSessionsAfter(4)
    const out = await py(sim.pools[0]!.masterUrl)
    sim.faults.clear()
    expect(out.fault).toContain('Tried 3 times to get a valid session')
  })
})
