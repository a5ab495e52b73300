import { describe, expect, it } from 'vitest'
import { parseInventory } from '../src/lib/inventory.js'
import {
  evacuationBudgetS,
  planShutdown,
  resolveHost,
  type ShutdownVmRecord,
} from '../src/ops/host-shutdown/plan.js'

const hosts = {
  'OpaqueRef:h1': { uuid: 'uuid-h1', name_label: 'node-1', enabled: true },
  'OpaqueRef:h2': { uuid: 'UUID-H2', name_label: 'node-2', enabled: true },
  'OpaqueRef:h3': { uuid: 'uuid-h3', name_label: 'twin', enabled: true },
  'OpaqueRef:h4': { uuid: 'uuid-h4', name_label: 'twin', enabled: false },
}

describe('resolveHost', () => {
  it('finds a host by uuid (any case) or name_label', () => {
    expect(resolveHost(hosts, 'uuid-h2').ref).toBe('OpaqueRef:h2')
    expect(resolveHost(hosts, 'node-1').ref).toBe('OpaqueRef:h1')
  })

  it('takes the only host of a one-host pool, else requires --host', () => {
    expect(resolveHost({ 'OpaqueRef:x': hosts['OpaqueRef:h1'] }, undefined).ref).toBe('OpaqueRef:x')
    expect(() => resolveHost(hosts, undefined)).toThrowErrorMatchingInlineSnapshot(
      `[UsageError: --host is required: the pool has 4 hosts (node-1, node-2, twin, twin)]`
    )
  })

  it('rejects unknown and ambiguous names', () => {
    expect(() => resolveHost(hosts, 'nope')).toThrow(
      /unknown host "nope" \(hosts of this pool: node-1/
    )
    expect(() => resolveHost(hosts, 'twin')).toThrow('2 hosts are named "twin": give the uuid')
  })
})

const vm = (name: string, extra: Partial<ShutdownVmRecord> = {}): ShutdownVmRecord => ({
  uuid: `uuid-${name}`,
  name_label: name,
  power_state: 'Running',
  resident_on: 'OpaqueRef:h1',
  is_control_domain: false,
  allowed_operations: ['clean_shutdown', 'hard_shutdown'],
  other_config: {},
  order: 0,
  ...extra,
})

describe('planShutdown', () => {
  const vms = {
    'OpaqueRef:a': vm('a', { order: '1' }), // XML-RPC int64 as a string
    'OpaqueRef:b': vm('b', {
      order: 3,
      power_state: 'Paused',
      allowed_operations: ['hard_shutdown'],
    }),
    'OpaqueRef:c': vm('c', { order: 1 }),
    'OpaqueRef:d': vm('d', { other_config: { auto_poweroff: 'False' } }),
    'OpaqueRef:e': vm('e', { power_state: 'Halted' }),
    'OpaqueRef:f': vm('f', { power_state: 'Suspended' }),
    'OpaqueRef:g': vm('g', { resident_on: 'OpaqueRef:h2' }),
    'OpaqueRef:dom0': vm('Control domain', { is_control_domain: true }),
    'OpaqueRef:k': vm('k', { other_config: { auto_poweroff: 'true' } }),
  }

  it('groups the host VMs by order, highest first, and sets opted-out VMs apart', () => {
    const plan = planShutdown(vms, 'OpaqueRef:h1')
    expect(plan.groups.map((g) => [g.order, g.vms.map((v) => v.name)])).toEqual([
      [3, ['b']],
      [1, ['a', 'c']],
      [0, ['k']],
    ])
    expect(plan.optedOut.map((v) => v.name)).toEqual(['d'])
    expect(plan.groups[0]!.vms[0]).toMatchObject({ powerState: 'Paused', cleanAllowed: false })
  })
})

describe('evacuationBudgetS', () => {
  it('is the time to push used memory over 1 Gbit/s, never below 240 s', () => {
    const GiB = 1024 ** 3
    expect(evacuationBudgetS(16 * GiB, 8 * GiB)).toBe(240)
    expect(evacuationBudgetS(String(512 * GiB), String(12 * GiB))).toBeCloseTo(
      (500 * GiB * 8) / (1000 * 1024 * 1024)
    )
    expect(evacuationBudgetS(undefined, undefined)).toBe(240)
  })
})

describe('parseInventory', () => {
  it('reads the KEY=value lines of /etc/xensource-inventory', () => {
    const text =
      "PRIMARY_DISK='/dev/sda'\nINSTALLATION_UUID='6f1c-ab'\nBUILD_NUMBER=release\nCONTROL_DOMAIN_UUID=\"d0\"\n# x\n"
    expect(parseInventory(text)).toEqual({
      PRIMARY_DISK: '/dev/sda',
      INSTALLATION_UUID: '6f1c-ab',
      BUILD_NUMBER: 'release',
      CONTROL_DOMAIN_UUID: 'd0',
    })
  })
})
