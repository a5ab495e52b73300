import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { curlSession } from '../lib/curl.js'
import { runScript } from '../lib/script.js'
import { writeSeed } from '../lib/seeds.js'
import { startSimProcess } from '../lib/sim-process.js'
import type { Bench, Figure } from '../lib/types.js'

function pool(name: string, vms: unknown[]) {
  return {
    name,
    hosts: [{ name: `${name}-1`, memoryGiB: 1024 }],
    srs: [{ name: 'Shared SR', default: true, shared: true, sizeGiB: 100_000 }],
    networks: [{ name: 'Pool-wide network associated with eth0' }],
    vms,
  }
}

/** Issue #7: vm-migrate --method stream at concurrency 1, 2, 4 vs curl export-to-file then upload. */
export const vmMigrateBench: Bench = {
  id: 'vm-migrate',
  title: 'vm-migrate: 10 VMs of 1 GiB by stream at concurrency 1, 2, 4 vs the manual way',
  issue: 7,
  async run({ quick, tmpDir, log }) {
    const count = quick ? 2 : 10
    const sizeMiB = quick ? 32 : 1024
    const levels = quick ? [2] : [1, 2, 4]
    const names = Array.from({ length: count }, (_, i) => `mig-${i}`)
    const vms = names.map((name) => ({
      name,
      powerState: 'Halted',
      disks: [{ sizeMiB, allocated: 0.25 }],
      networks: ['Pool-wide network associated with eth0'],
    }))
    const seed = await writeSeed(tmpDir, 'vm-migrate', {
      pools: [pool('src', vms), pool('dst', [])],
    })
    const figures: Figure[] = []

    // The manual way, once: for each VM, curl the export into a file, then curl it up.
    const manualMs = await (async () => {
      const sim = await startSimProcess(['--seed', seed, '--port', '0'])
      const src = await curlSession(sim.pools[0]!.master, sim.user, sim.password)
      const dst = await curlSession(sim.pools[1]!.master, sim.user, sim.password)
      try {
        const t0 = performance.now()
        for (const name of names) {
          const file = join(tmpDir, `${name}.xva`)
          await src.export(name, file)
          await dst.import(file)
          await rm(file)
        }
        return performance.now() - t0
      } finally {
        await src.close()
        await dst.close()
        await sim.stop()
      }
    })()

    for (const c of levels) {
      const sim = await startSimProcess(['--seed', seed, '--port', '0'])
      try {
        const env = {
          XAPI_FROM_URL: sim.pools[0]!.master,
          XAPI_FROM_USER: sim.user,
          XAPI_FROM_PASSWORD: sim.password,
          XAPI_TO_URL: sim.pools[1]!.master,
          XAPI_TO_USER: sim.user,
          XAPI_TO_PASSWORD: sim.password,
        }
        const r = await runScript(
          'vm-migrate',
          ['--all', '--method', 'stream', '--concurrency', String(c), '--json'],
          env
        )
        if (r.code !== 0) throw new Error(`vm-migrate exited with ${r.code}: ${r.stderr}`)
        log(
          `concurrency ${c}: ${r.ms.toFixed(0)} ms vs manual ${manualMs.toFixed(0)} ms, peak RSS ${r.peakRssMiB.toFixed(0)} MiB`
        )
        figures.push({
          name: `${count} VMs of ${sizeMiB} MiB by stream, concurrency ${c}, whole script`,
          value: r.ms,
          unit: 'ms',
          better: 'lower',
          baseline: { name: 'curl export to a file, then curl -T, VM by VM', value: manualMs },
          goal: '≥ 1.5× faster',
          met: manualMs / r.ms >= 1.5,
        })
        figures.push({
          name: `peak RSS of vm-migrate, concurrency ${c}`,
          value: r.peakRssMiB,
          unit: 'MiB',
          better: 'lower',
          goal: 'flat',
        })
      } finally {
        await sim.stop()
      }
    }
    return figures
  },
}
