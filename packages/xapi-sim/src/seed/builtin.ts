import type { PoolSeed, SeedData, VmSeed } from './schema.js'

/** Names of the built-in seeds. */
export const BUILTIN_SEEDS = ['small', 'two-pools', 'demo', 'scale'] as const
export type BuiltinSeed = (typeof BUILTIN_SEEDS)[number]

const SHARED = 'Shared NFS storage'
const NET0 = 'Pool-wide network associated with eth0'
const NET1 = 'VM network'

function basePool(name: string, hostNames: string[], memoryGiB: number): PoolSeed {
  return {
    name,
    hosts: hostNames.map((h) => ({ name: h, memoryGiB, cpus: 16 })),
    srs: [
      { name: SHARED, type: 'nfs', shared: true, default: true, sizeGiB: 2048 },
      {
        name: `Local storage ${hostNames[0]}`,
        type: 'ext',
        shared: false,
        sizeGiB: 512,
        host: hostNames[0],
      },
    ],
    networks: [
      { name: NET0, bridge: 'xenbr0' },
      { name: NET1, bridge: 'xenbr1' },
    ],
    appliances: [],
    vms: [],
  }
}

function smallPoolA(): PoolSeed {
  const p = basePool('pool-a', ['xcp-a1', 'xcp-a2'], 16)
  p.appliances = [{ name: 'web-stack' }]
  p.vms = [
    {
      name: 'web-01',
      powerState: 'Running',
      host: 'xcp-a1',
      memoryMiB: 1024,
      disks: [{ sizeMiB: 32 }],
      networks: [NET1],
      snapshots: ['web-01 before upgrade'],
      appliance: 'web-stack',
      order: 1,
      tags: ['web'],
    },
    {
      name: 'db-01',
      powerState: 'Running',
      host: 'xcp-a2',
      memoryMiB: 2048,
      vcpus: 2,
      disks: [{ sizeMiB: 64 }, { sizeMiB: 16, name: 'db-01 data' }],
      networks: [NET1],
      appliance: 'web-stack',
      order: 0,
      tags: ['db'],
    },
    {
      name: 'build-01',
      powerState: 'Halted',
      memoryMiB: 1024,
      disks: [{ sizeMiB: 16 }],
      networks: [NET0],
    },
    {
      name: 'cache-01',
      powerState: 'Suspended',
      memoryMiB: 512,
      disks: [{ sizeMiB: 8 }],
      networks: [NET1],
    },
    {
      name: 'paused-01',
      powerState: 'Paused',
      host: 'xcp-a1',
      memoryMiB: 512,
      disks: [{ sizeMiB: 8 }],
      networks: [NET1],
    },
    { name: 'Debian 12 template', template: true, memoryMiB: 1024, disks: [{ sizeMiB: 8 }] },
  ]
  return p
}

function poolB(hosts: string[], memoryGiB: number, vms: VmSeed[]): PoolSeed {
  const p = basePool('pool-b', hosts, memoryGiB)
  p.vms = vms
  return p
}

function small(): SeedData {
  return { pools: [smallPoolA()] }
}

function twoPools(): SeedData {
  return {
    pools: [
      smallPoolA(),
      poolB(['xcp-b1', 'xcp-b2'], 16, [
        {
          name: 'b-app-01',
          powerState: 'Running',
          host: 'xcp-b1',
          memoryMiB: 1024,
          disks: [{ sizeMiB: 16 }],
          networks: [NET1],
        },
      ]),
    ],
  }
}

function demo(): SeedData {
  const a = basePool('pool-a', ['xcp-a1', 'xcp-a2', 'xcp-a3'], 64)
  a.appliances = [{ name: 'shop', description: 'Web shop: database first, then app, then front' }]
  const MiB = (n: number) => [{ sizeMiB: n, allocated: 0.4 }]
  a.vms = [
    {
      name: 'shop-db',
      powerState: 'Running',
      host: 'xcp-a1',
      memoryMiB: 4096,
      vcpus: 4,
      disks: [
        { sizeMiB: 512, allocated: 0.6 },
        { sizeMiB: 256, name: 'shop-db data' },
      ],
      networks: [NET1],
      appliance: 'shop',
      order: 0,
      startDelay: 5,
      shutdownDelay: 3,
      tags: ['prod', 'db'],
    },
    {
      name: 'shop-app',
      powerState: 'Running',
      host: 'xcp-a2',
      memoryMiB: 2048,
      vcpus: 2,
      disks: MiB(384),
      networks: [NET1],
      appliance: 'shop',
      order: 1,
      startDelay: 2,
      tags: ['prod', 'app'],
    },
    {
      name: 'shop-front',
      powerState: 'Running',
      host: 'xcp-a3',
      memoryMiB: 1024,
      disks: MiB(256),
      networks: [NET1],
      appliance: 'shop',
      order: 2,
      tags: ['prod', 'web'],
    },
    {
      name: 'monitoring',
      powerState: 'Running',
      host: 'xcp-a1',
      memoryMiB: 2048,
      disks: MiB(320),
      networks: [NET0],
      otherConfig: { auto_poweroff: 'false' },
      tags: ['infra'],
    },
    {
      name: 'ci-runner-1',
      powerState: 'Running',
      host: 'xcp-a2',
      memoryMiB: 4096,
      vcpus: 4,
      disks: MiB(448),
      networks: [NET1],
      tags: ['ci'],
      behaviour: 'slow',
      cleanShutdownS: 20,
    },
    {
      name: 'ci-runner-2',
      powerState: 'Running',
      host: 'xcp-a3',
      memoryMiB: 4096,
      vcpus: 4,
      disks: MiB(448),
      networks: [NET1],
      tags: ['ci'],
    },
    {
      name: 'legacy-erp',
      powerState: 'Running',
      host: 'xcp-a1',
      memoryMiB: 3072,
      disks: MiB(512),
      networks: [NET1],
      tags: ['legacy'],
      behaviour: 'no-pv',
    },
    {
      name: 'stuck-guest',
      powerState: 'Running',
      host: 'xcp-a2',
      memoryMiB: 1024,
      disks: MiB(192),
      networks: [NET1],
      tags: ['legacy'],
      behaviour: 'ignore',
      cleanShutdownS: 30,
    },
    {
      name: 'dev-sandbox',
      powerState: 'Halted',
      memoryMiB: 2048,
      disks: MiB(256),
      networks: [NET1],
      tags: ['dev'],
    },
    {
      name: 'reporting',
      powerState: 'Suspended',
      memoryMiB: 2048,
      disks: MiB(320),
      networks: [NET1],
      tags: ['batch'],
    },
    {
      name: 'batch-worker',
      powerState: 'Paused',
      host: 'xcp-a3',
      memoryMiB: 1024,
      disks: MiB(192),
      networks: [NET1],
      tags: ['batch'],
    },
    {
      name: 'wiki',
      powerState: 'Halted',
      memoryMiB: 1024,
      disks: MiB(256),
      networks: [NET1],
      snapshots: ['wiki before upgrade'],
      tags: ['infra'],
    },
    { name: 'Debian 12 template', template: true, memoryMiB: 1024, disks: MiB(256) },
  ]
  const b = poolB(['xcp-b1', 'xcp-b2'], 64, [
    {
      name: 'dr-dns',
      powerState: 'Running',
      host: 'xcp-b1',
      memoryMiB: 512,
      disks: MiB(128),
      networks: [NET1],
      tags: ['infra'],
    },
  ])
  return { pools: [a, b] }
}

function scale(): SeedData {
  const hosts = Array.from({ length: 8 }, (_, i) => `xcp-s${i + 1}`)
  const p = basePool('pool-a', hosts, 4096)
  const states = ['Running', 'Running', 'Halted', 'Running', 'Suspended', 'Running'] as const
  p.vms = Array.from({ length: 5000 }, (_, i): VmSeed => {
    const powerState = states[i % states.length]!
    return {
      name: `vm-${String(i).padStart(4, '0')}`,
      powerState,
      ...(powerState === 'Running' ? { host: hosts[i % hosts.length]! } : {}),
      memoryMiB: 512,
      disks: [{ sizeMiB: 8, allocated: 0.25 }],
      networks: [NET1],
      tags: i % 10 === 0 ? ['bench'] : [],
    }
  })
  return { pools: [p] }
}

/** The data of a built-in seed (fresh object each call). */
export function builtinSeed(name: BuiltinSeed): SeedData {
  switch (name) {
    case 'small':
      return small()
    case 'two-pools':
      return twoPools()
    case 'demo':
      return demo()
    case 'scale':
      return scale()
  }
}
