import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { curlSession } from '../lib/curl.js'
import { runScript, type ScriptForm } from '../lib/script.js'
import { writeSeed } from '../lib/seeds.js'
import { startSimProcess } from '../lib/sim-process.js'
import { median } from '../lib/stats.js'
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
    // Two pools are two sets of servers: each simulated pool runs in its own process, so the
    // source's export and the destination's import are not served by one event loop.
    const srcSeed = await writeSeed(tmpDir, 'vm-migrate-src', { pools: [pool('src', vms)] })
    const dstSeed = await writeSeed(tmpDir, 'vm-migrate-dst', { pools: [pool('dst', [])] })
    const startPools = async () => {
      const src = await startSimProcess(['--seed', srcSeed, '--port', '0'])
      const dst = await startSimProcess(['--seed', dstSeed, '--port', '0'])
      return { src, dst, stop: () => Promise.all([src.stop(), dst.stop()]) }
    }
    const figures: Figure[] = []

    // The manual way: for each VM, curl the export into a file, then curl it up.
    const manualRun = async () => {
      const sims = await startPools()
      const src = await curlSession(sims.src.pools[0]!.master, sims.src.user, sims.src.password)
      const dst = await curlSession(sims.dst.pools[0]!.master, sims.dst.user, sims.dst.password)
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
        await sims.stop()
      }
    }
    const scriptRun = async (c: number, form: ScriptForm = 'built') => {
      const sims = await startPools()
      try {
        const env = {
          XAPI_FROM_URL: sims.src.pools[0]!.master,
          XAPI_FROM_USER: sims.src.user,
          XAPI_FROM_PASSWORD: sims.src.password,
          XAPI_TO_URL: sims.dst.pools[0]!.master,
          XAPI_TO_USER: sims.dst.user,
          XAPI_TO_PASSWORD: sims.dst.password,
        }
        const r = await runScript(
          'vm-migrate',
          ['--all', '--method', 'stream', '--concurrency', String(c), '--json'],
          env,
          form
        )
        if (r.code !== 0) throw new Error(`vm-migrate exited with ${r.code}: ${r.stderr}`)
        return r
      } finally {
        await sims.stop()
      }
    }

    // Rounds of: the manual way, then the script at each concurrency. The machine drifts: each
    // figure is the median of its rounds, measured between the same baseline runs.
    const rounds = quick ? 1 : 3
    const manual: number[] = []
    const runs = new Map<number, { ms: number[]; peakRssMiB: number }>()
    // The same through tsx (`npx tsx scripts/vm-migrate.ts`, no build), at one concurrency.
    const tsxLevel = levels.includes(2) ? 2 : levels[0]!
    const tsxMs: number[] = []
    for (let round = 1; round <= rounds; round++) {
      const m = await manualRun()
      manual.push(m)
      log(`round ${round}: manual way ${m.toFixed(0)} ms`)
      for (const c of levels) {
        const r = await scriptRun(c)
        const entry = runs.get(c) ?? { ms: [], peakRssMiB: 0 }
        entry.ms.push(r.ms)
        entry.peakRssMiB = Math.max(entry.peakRssMiB, r.peakRssMiB)
        runs.set(c, entry)
        log(
          `round ${round}: concurrency ${c}: ${r.ms.toFixed(0)} ms, peak RSS ${r.peakRssMiB.toFixed(0)} MiB`
        )
      }
      const t = await scriptRun(tsxLevel, 'tsx')
      tsxMs.push(t.ms)
      log(`round ${round}: concurrency ${tsxLevel} through tsx: ${t.ms.toFixed(0)} ms`)
    }
    const manualMs = median(manual)
    log(`manual way: median ${manualMs.toFixed(0)} ms`)
    const results = levels.map((c) => ({
      c,
      ms: median(runs.get(c)!.ms),
      peakRssMiB: runs.get(c)!.peakRssMiB,
    }))
    for (const { c, ms, peakRssMiB } of results) {
      figures.push({
        name: `${count} VMs of ${sizeMiB} MiB by stream, concurrency ${c}, whole built script (median of ${rounds})`,
        value: ms,
        unit: 'ms',
        better: 'lower',
        baseline: {
          name: `curl export to a file, then curl -T, VM by VM (median of ${rounds})`,
          value: manualMs,
        },
        goal: '≥ 1.5× faster',
        met: manualMs / ms >= 1.5,
      })
      figures.push({
        name: `peak RSS of vm-migrate, concurrency ${c} (highest of ${rounds})`,
        value: peakRssMiB,
        unit: 'MiB',
        better: 'lower',
        goal: 'flat',
      })
    }
    figures.push({
      name: `the same at concurrency ${tsxLevel} through tsx, no build (median of ${rounds})`,
      value: median(tsxMs),
      unit: 'ms',
      better: 'lower',
      baseline: {
        name: `curl export to a file, then curl -T, VM by VM (median of ${rounds})`,
        value: manualMs,
      },
    })
    return figures
  },
}
