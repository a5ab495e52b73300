// Shared fixtures of the transfer tests: a simulator with two pools, a client per pool, and
// helpers to compare disk contents and to check that nothing is left behind.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'vitest'
import { startSimulator, type SeedData, type Simulator } from '@xapi-ops/xapi-sim'
import { connect, type Ref, type TransferProgress, type XapiClient } from '../src/index.js'

export const MiB = 2 ** 20

/** Two pools: `src` (two hosts, a shared default SR and a local SR on the second host), `dst`. */
export const TRANSFER_SEED: SeedData = {
  pools: [
    {
      name: 'src',
      hosts: [{ name: 'src-1' }, { name: 'src-2' }],
      srs: [
        { name: 'src-shared', type: 'nfs', shared: true, default: true, sizeGiB: 100 },
        { name: 'src-local-2', type: 'ext', shared: false, host: 'src-2', sizeGiB: 100 },
      ],
      networks: [{ name: 'net' }],
      vms: [
        {
          name: 'halted',
          powerState: 'Halted',
          disks: [
            { sizeMiB: 7, allocated: 0.6 },
            { sizeMiB: 2.5, allocated: 1, name: 'data' },
          ],
          networks: ['net'],
        },
        { name: 'on-local-2', powerState: 'Halted', disks: [{ sizeMiB: 3, sr: 'src-local-2' }] },
        { name: 'running', powerState: 'Running', disks: [{ sizeMiB: 2 }] },
        { name: 'suspended', powerState: 'Suspended', disks: [{ sizeMiB: 2 }] },
        { name: 'big', powerState: 'Halted', disks: [{ sizeMiB: 96, allocated: 0.9 }] },
      ],
    },
    {
      name: 'dst',
      hosts: [{ name: 'dst-1' }, { name: 'dst-2' }],
      srs: [
        { name: 'dst-shared', type: 'nfs', shared: true, default: true, sizeGiB: 100 },
        { name: 'dst-local-2', type: 'ext', shared: false, host: 'dst-2', sizeGiB: 100 },
      ],
      networks: [{ name: 'net' }],
    },
  ],
}

type Fixtures = { sim: Simulator; src: XapiClient; dst: XapiClient; dir: string }

export const it = test.extend<Fixtures>({
  // eslint-disable-next-line no-empty-pattern
  sim: async ({}, use) => {
    const sim = await startSimulator({ seed: TRANSFER_SEED, timeScale: 0.01 })
    await use(sim)
    await sim.close()
  },
  src: async ({ sim }, use) => {
    const client = await connect({
      url: sim.pools[0]!.masterUrl,
      user: sim.user,
      password: sim.password,
    })
    await use(client)
    await client.close()
  },
  dst: async ({ sim }, use) => {
    const client = await connect({
      url: sim.pools[1]!.masterUrl,
      user: sim.user,
      password: sim.password,
    })
    await use(client)
    await client.close()
  },
  // eslint-disable-next-line no-empty-pattern
  dir: async ({}, use) => {
    const dir = await mkdtemp(join(tmpdir(), 'xapi-transfer-'))
    await use(dir)
    await rm(dir, { recursive: true, force: true })
  },
})

/** The transfer seed over TLS (`src`, `dst`: clients pinning its certificate), disposable. */
export async function startTlsPools() {
  const sim = await startSimulator({ seed: TRANSFER_SEED, timeScale: 0.01, tls: true })
  const options = { user: sim.user, password: sim.password, fingerprint: sim.fingerprint! }
  const src = await connect({ url: sim.pools[0]!.masterUrl, ...options })
  const dst = await connect({ url: sim.pools[1]!.masterUrl, ...options })
  return {
    sim,
    src,
    dst,
    async [Symbol.asyncDispose]() {
      await src.close()
      await dst.close()
      await sim.close()
    },
  }
}

/** The transfer seed on a unix socket in `dir`, as the dom0 one, and a client on it. */
export async function startLocalPool(dir: string) {
  const socketPath = join(dir, 'xapi.sock')
  const sim = await startSimulator({ seed: TRANSFER_SEED, timeScale: 0.01, socketPath })
  const local = await connect({ url: `unix:${socketPath}`, user: sim.user, password: sim.password })
  return {
    sim,
    local,
    async [Symbol.asyncDispose]() {
      await local.close()
      await sim.close()
    },
  }
}

/** The ref of the VM named `name`. */
export function vmRef(sim: Simulator, name: string): Ref<'VM'> {
  const hit = sim.db.find('VM', (r) => r.name_label === name && r.is_a_snapshot !== true)
  if (!hit) throw new Error(`no VM ${name}`)
  return hit[0] as Ref<'VM'>
}

/** The ref of the SR named `name`. */
export function srRef(sim: Simulator, name: string): Ref<'SR'> {
  const hit = sim.db.find('SR', (r) => r.name_label === name)
  if (!hit) throw new Error(`no SR ${name}`)
  return hit[0] as Ref<'SR'>
}

/** Content hashes of a VM's disks in `userdevice` order (the simulator's `DiskContent.hash()`). */
export function diskHashes(sim: Simulator, vm: string): string[] {
  const db = sim.db.poolOf(vm)
  if (!db) throw new Error(`no VM ${vm}`)
  const record = db.get(vm)!
  return (record.VBDs as string[])
    .map((ref) => db.get(ref)!)
    .filter((vbd) => vbd.type === 'Disk' && vbd.VDI !== 'OpaqueRef:NULL')
    .sort((a, b) => Number(a.userdevice) - Number(b.userdevice))
    .map((vbd) => {
      const content = db.vdiContent.get(vbd.VDI as string)
      if (!content) throw new Error(`no content for VDI ${String(vbd.VDI)}`)
      return content.hash()
    })
}

/** Tasks still in the pool (a finished transfer leaves none: each one destroys its task). */
export function taskCount(sim: Simulator, pool: number): number {
  return sim.db.pool(sim.pools[pool]!.name).all('task').size
}

/** VMs of a pool that are not templates, snapshots or control domains. */
export function vmNames(sim: Simulator, pool: number): string[] {
  const vms = sim.db.pool(sim.pools[pool]!.name).all('VM')
  return [...vms.values()]
    .filter((r) => !r.is_a_template && !r.is_a_snapshot && !r.is_control_domain)
    .map((r) => String(r.name_label))
    .sort()
}

/** Collects progress events and checks the invariants of `TransferProgress`. */
export function progressRecorder() {
  const events: TransferProgress[] = []
  return {
    events,
    onProgress: (p: TransferProgress) => events.push(p),
    /** Fractions in [0, 1], monotonic, ending at 1; bytes monotonic; no NaN. */
    check(): string[] {
      const problems: string[] = []
      let lastFraction = 0
      let lastBytes = 0
      for (const p of events) {
        if (p.fraction !== undefined) {
          if (!(p.fraction >= 0 && p.fraction <= 1))
            problems.push(`fraction ${p.fraction} out of [0, 1]`)
          if (p.fraction < lastFraction)
            problems.push(`fraction went back ${lastFraction} → ${p.fraction}`)
          lastFraction = p.fraction
        }
        if (p.bytes < lastBytes) problems.push(`bytes went back ${lastBytes} → ${p.bytes}`)
        lastBytes = p.bytes
        if (!Number.isFinite(p.rateBytesPerSec)) problems.push(`rate ${p.rateBytesPerSec}`)
      }
      if (events.at(-1)?.fraction !== 1) problems.push(`last fraction ${events.at(-1)?.fraction}`)
      return problems
    },
  }
}
