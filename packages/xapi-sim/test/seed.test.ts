import { describe, expect, it } from 'vitest'
import { builtinSeed, loadSeed, startSimulator, validateSeed } from '../src/index.js'

describe('seeds', () => {
  it('demo: pool A (3 hosts, ~12 VMs of mixed states, orders, tags, one auto_poweroff=false), pool B with matching names', async () => {
    await using sim = await startSimulator({ seed: 'demo', timeScale: 0.001 })
    expect(sim.pools.map((p) => [p.name, p.hosts.length])).toEqual([
      ['pool-a', 3],
      ['pool-b', 2],
    ])
    const a = sim.db.pool('pool-a')
    const user = a
      .filter('VM', (v) => !v.is_control_domain && !v.is_a_template && !v.is_a_snapshot)
      .map(([, v]) => v)
    expect(user.length).toBeGreaterThanOrEqual(10)
    expect(new Set(user.map((v) => v.power_state))).toEqual(
      new Set(['Running', 'Halted', 'Suspended', 'Paused'])
    )
    expect(new Set(user.map((v) => v.order)).size).toBeGreaterThan(1)
    expect(user.filter((v) => v.other_config.auto_poweroff === 'false')).toHaveLength(1)
    expect(user.every((v) => v.tags.length > 0)).toBe(true)
    const sizes = a.filter('VDI', (v) => v.type === 'user').map(([, v]) => v.virtual_size as number)
    expect(Math.max(...sizes)).toBeGreaterThanOrEqual(256 * 2 ** 20)
    const b = sim.db.pool('pool-b')
    const names = (db: typeof a, cls: string) =>
      new Set(db.filter(cls).map(([, r]) => r.name_label as string))
    for (const n of names(b, 'network')) expect(names(a, 'network')).toContain(n)
    const sharedA = a.find('SR', (r) => r.shared)![1].name_label
    expect(names(b, 'SR')).toContain(sharedA)
  })

  it('scale: one pool with 5,000 user VMs', () => {
    const seed = builtinSeed('scale')
    expect(seed.pools).toHaveLength(1)
    expect(seed.pools[0]!.vms).toHaveLength(5000)
    expect(validateSeed(seed).ok).toBe(true)
  })

  it('every built-in seed is valid and starts', async () => {
    for (const name of ['small', 'two-pools'] as const) {
      expect(validateSeed(builtinSeed(name))).toMatchObject({ ok: true })
      await using sim = await startSimulator({ seed: name, timeScale: 0.001 })
      expect(sim.pools.length).toBe(name === 'small' ? 1 : 2)
    }
  })

  it('reports every problem of a bad seed with its dot path', async () => {
    const r = validateSeed({
      pools: [
        {
          name: 'p',
          hosts: [{ name: 'h' }],
          srs: [{ name: 'sr' }],
          networks: [],
          vms: [{ name: 'v', host: 'x', disks: [{ sizeMiB: 1, sr: 'nope' }], networks: ['lan'] }],
        },
      ],
    })
    expect(r).toEqual({
      ok: false,
      errors: [
        'pools.0.vms.0.host: no host named x',
        'pools.0.vms.0.disks.0.sr: no SR named nope',
        'pools.0.vms.0.networks.0: no network named lan',
      ],
    })
    expect(validateSeed({ pools: [{ name: '', hosts: [] }] })).toMatchObject({ ok: false })
    await expect(loadSeed('no-such-seed')).rejects.toThrow(/Unknown seed "no-such-seed"/)
    await expect(startSimulator({ seed: { pools: [] } as never })).rejects.toThrow(
      /pools: a seed needs at least one pool/
    )
  })
})
