import { runWorker } from '../lib/child.js'
import { onePool, writeSeed } from '../lib/seeds.js'
import { startSimProcess } from '../lib/sim-process.js'
import type { Bench, Figure } from '../lib/types.js'

const ORDERS = [0, 1, 2, 3]

/** A fixed distribution of clean-shutdown times (simulated seconds): 10–59 s, no randomness. */
function durations(count: number): number[] {
  return Array.from({ length: count }, (_, i) => 10 + ((i * 7919) % 50))
}

/** Makespan of FIFO list scheduling with `concurrency` slots and zero overhead. */
export function idealMakespan(jobs: number[], concurrency: number): number {
  const slots = Array.from({ length: Math.min(concurrency, jobs.length) }, () => 0)
  for (const job of jobs) {
    let i = 0
    for (let j = 1; j < slots.length; j++) if (slots[j]! < slots[i]!) i = j
    slots[i]! += job
  }
  return Math.max(0, ...slots)
}

type Result = { ms: number; groups: string[][]; failed: number }

/** Issue #5: ordered shutdown of 200 VMs in 4 groups vs the lower bound and an ideal scheduler. */
export const hostShutdownBench: Bench = {
  id: 'host-shutdown',
  title: 'host-shutdown: 200 VMs in 4 order groups vs the lower bound and an ideal scheduler',
  issue: 5,
  async run({ quick, tmpDir, log }) {
    const count = quick ? 16 : 200
    const timeScale = quick ? 0.002 : 0.02
    const secs = durations(count)
    const byName = new Map<string, number>()
    const vms = secs.map((s, i) => {
      const name = `vm-${String(i).padStart(3, '0')}`
      byName.set(name, s * timeScale * 1000)
      return {
        name,
        powerState: 'Running',
        host: 'bench-1',
        memoryMiB: 256,
        order: ORDERS[i % ORDERS.length],
        behaviour: 'slow',
        cleanShutdownS: s,
      }
    })
    const seed = await writeSeed(tmpDir, 'host-shutdown', onePool(vms))
    const figures: Figure[] = []
    const measure = async (concurrency: number, scale = timeScale) => {
      const sim = await startSimProcess([
        '--seed',
        seed,
        '--port',
        '0',
        '--time-scale',
        String(scale),
      ])
      try {
        const r = await runWorker<Result>('host-shutdown', {
          url: sim.pools[0]!.master,
          user: sim.user,
          password: sim.password,
          host: 'bench-1',
          concurrency,
        })
        if (r.failed) throw new Error(`${r.failed} VMs failed to shut down: ${JSON.stringify(r)}`)
        return r
      } finally {
        await sim.stop()
      }
    }
    const ms = (name: string) => byName.get(name)!

    const all = await measure(count)
    const bound = all.groups.reduce((sum, g) => sum + Math.max(...g.map(ms)), 0)
    log(`whole groups at once: ${all.ms.toFixed(0)} ms, bound ${bound.toFixed(0)} ms`)
    figures.push({
      name: `${count} VMs, ${ORDERS.length} groups, concurrency ${count} (a whole group at once)`,
      value: all.ms,
      unit: 'ms',
      better: 'lower',
      baseline: { name: 'lower bound: Σ slowest VM per group', value: bound },
      goal: '≤ 1.1× the bound',
      met: all.ms <= bound * 1.1,
    })

    const eight = await measure(8)
    const ideal = eight.groups.reduce((sum, g) => sum + idealMakespan(g.map(ms), 8), 0)
    figures.push({
      name: `${count} VMs, ${ORDERS.length} groups, concurrency 8`,
      value: eight.ms,
      unit: 'ms',
      better: 'lower',
      baseline: { name: 'ideal zero-overhead FIFO scheduler, same queue', value: ideal },
      goal: '≤ 1.1× the ideal',
      met: eight.ms <= ideal * 1.1,
    })

    // The dom0 program's way, one VM after the other, for the record. At a faster time scale
    // (and compared with its own ideal) to keep the run short.
    const serialScale = timeScale / 4
    const serial = await measure(1, serialScale)
    const serialIdeal = secs.reduce((a, s) => a + s * serialScale * 1000, 0)
    figures.push({
      name: `${count} VMs one at a time (serial, time scale ${serialScale})`,
      value: serial.ms,
      unit: 'ms',
      better: 'lower',
      baseline: { name: 'Σ of all clean-shutdown times', value: serialIdeal },
      note: `serial takes ${(((serial.ms / serialScale) * timeScale) / all.ms).toFixed(1)}× as long as whole groups at once, at the same time scale`,
    })
    return figures
  },
}
