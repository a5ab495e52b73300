import { connect } from '@xapi-ops/xapi'
import { createClient } from 'xen-api'
import { startSimProcess } from '../lib/sim-process.js'
import { timePair } from '../lib/stats.js'
import type { Bench, Figure } from '../lib/types.js'

/**
 * xen-api's undici pool may reuse a keep-alive socket the server is closing after an idle spell
 * ("other side closed"); one retry keeps that race out of the figures.
 */
async function retryOnce<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch {
    return fn()
  }
}

/** Issue #2: the client against Xen Orchestra's `xen-api`, same simulator, same run. */
export const clientBench: Bench = {
  id: 'client',
  title:
    'XAPI client: VM.get_all_records over 5,000 VMs and 2,000 sequential small calls, vs xen-api',
  issue: 2,
  async run({ quick, log }) {
    const sim = await startSimProcess(['--seed', quick ? 'small' : 'scale', '--port', '0'])
    const url = sim.pools[0]!.master
    const figures: Figure[] = []
    try {
      for (const transport of ['json-rpc', 'xml-rpc'] as const) {
        const ours = await connect({ url, user: sim.user, password: sim.password, transport })
        const theirs = createClient({
          url,
          auth: { user: sim.user, password: sim.password },
          transport,
          watchEvents: false,
          allowUnauthorized: false,
        })
        await theirs.connect()
        try {
          const count = Object.keys(
            await ours.call<Record<string, unknown>>('VM.get_all_records')
          ).length
          log(`${transport}: ${count} VMs`)
          const runs = quick ? 1 : 7
          const [a, b] = await timePair(
            () => ours.call('VM.get_all_records'),
            () => retryOnce(() => theirs.call('VM.get_all_records')),
            runs
          )
          figures.push({
            name: `VM.get_all_records, ${count} VMs, ${transport}`,
            value: a,
            unit: 'ms',
            better: 'lower',
            baseline: { name: 'xen-api 4.7.6', value: b },
            goal: '≥ 1.0× xen-api',
            met: a <= b * 1.0 + 0.5,
          })
          const n = quick ? 50 : 2000
          const [c, d] = await timePair(
            async () => {
              for (let i = 0; i < n; i++) await ours.call('pool.get_all')
            },
            async () => {
              for (let i = 0; i < n; i++) await retryOnce(() => theirs.call('pool.get_all'))
            },
            quick ? 1 : 3
          )
          figures.push({
            name: `${n} sequential pool.get_all calls, ${transport}`,
            value: c,
            unit: 'ms',
            better: 'lower',
            baseline: { name: 'xen-api 4.7.6', value: d },
            goal: '≥ 1.0× xen-api',
            met: c <= d,
          })
        } finally {
          await ours.close()
          await theirs.disconnect()
        }
      }
    } finally {
      await sim.stop()
    }
    return figures
  },
}
