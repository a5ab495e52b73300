import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'

/** Writes a seed file for the simulator CLI and returns its path. */
export async function writeSeed(dir: string, name: string, seed: unknown): Promise<string> {
  const file = join(dir, `${name}.seed.json`)
  await writeFile(file, JSON.stringify(seed))
  return file
}

/** One pool, one host, one big SR, and the given VMs. */
export function onePool(vms: unknown[], hostMemoryGiB = 1024) {
  return {
    pools: [
      {
        name: 'bench',
        hosts: [{ name: 'bench-1', memoryGiB: hostMemoryGiB }],
        srs: [{ name: 'Local storage', default: true, shared: true, sizeGiB: 100_000 }],
        networks: [{ name: 'Pool-wide network associated with eth0' }],
        vms,
      },
    ],
  }
}

/**
 * One pool of `hosts` hosts, each with its own local SR; VM i's disks go on host i mod n: an
 * export of a halted VM then loads the host that holds its disks (xapi answers 302 there), and
 * the exports spread over the hosts as over a real pool's.
 */
export function hostsWithLocalSrs(
  hosts: number,
  vms: Array<{ name: string; disks: Array<Record<string, unknown>> } & Record<string, unknown>>
) {
  const names = Array.from({ length: hosts }, (_, i) => `bench-${i + 1}`)
  return {
    pools: [
      {
        name: 'bench',
        hosts: names.map((name) => ({ name, memoryGiB: 1024 })),
        srs: names.map((host, i) => ({
          name: `Local storage on ${host}`,
          host,
          shared: false,
          default: i === 0,
          sizeGiB: 100_000,
        })),
        networks: [{ name: 'Pool-wide network associated with eth0' }],
        vms: vms.map((vm, i) => ({
          ...vm,
          disks: vm.disks.map((d) => ({ ...d, sr: `Local storage on ${names[i % hosts]!}` })),
        })),
      },
    ],
  }
}
