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
