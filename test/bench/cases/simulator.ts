import { rawJsonRpc } from '../lib/raw-rpc.js'
import { startSimProcess } from '../lib/sim-process.js'
import { timeMedian } from '../lib/stats.js'
import type { Bench, Figure } from '../lib/types.js'

/**
 * Issue #3: the simulator must not be what limits the client benchmarks. Measured with the
 * thinnest possible client (raw JSON-RPC over keep-alive), so the figures are the server's.
 */
export const simulatorBench: Bench = {
  id: 'simulator',
  title: 'Simulator: small calls per second and VM.get_all_records over the scale seed',
  issue: 3,
  async run({ quick }) {
    const sim = await startSimProcess(['--seed', quick ? 'small' : 'scale', '--port', '0'])
    const rpc = rawJsonRpc(sim.pools[0]!.master)
    const figures: Figure[] = []
    try {
      const { result: session } = await rpc.call('session.login_with_password', [
        sim.user,
        sim.password,
      ])
      const n = quick ? 100 : 4000
      const seqMs = await timeMedian(
        async () => {
          for (let i = 0; i < n; i++) await rpc.call('pool.get_all', [session])
        },
        quick ? 1 : 3
      )
      const parMs = await timeMedian(
        async () => {
          let next = 0
          await Promise.all(
            Array.from({ length: 8 }, async () => {
              while (next++ < n) await rpc.call('pool.get_all', [session])
            })
          )
        },
        quick ? 1 : 3
      )
      figures.push({
        name: 'pool.get_all, sequential',
        value: (n / seqMs) * 1000,
        unit: 'calls/s',
        better: 'higher',
      })
      figures.push({
        name: 'pool.get_all, 8 in flight',
        value: (n / parMs) * 1000,
        unit: 'calls/s',
        better: 'higher',
      })
      let bytes = 0
      let count = 0
      const allMs = await timeMedian(
        async () => {
          const { body, result } = await rpc.call('VM.get_all_records', [session])
          bytes = body.length
          count = Object.keys(result as object).length
        },
        quick ? 1 : 5
      )
      figures.push({
        name: `VM.get_all_records, ${count} VMs (${(bytes / 2 ** 20).toFixed(1)} MiB JSON), server + raw parse`,
        value: allMs,
        unit: 'ms',
        better: 'lower',
      })
      await rpc.call('session.logout', [session])
    } finally {
      rpc.close()
      await sim.stop()
    }
    return figures
  },
}
