/**
 * Bench worker: `shutdownHost` (the operation behind scripts/host-shutdown.ts) on one host; prints
 * its own wall time (process start-up excluded) and the queue order of the plan.
 */
import { connect } from '@xapi-ops/xapi'
import { shutdownHost } from '@xapi-ops/scripts'

const input = JSON.parse(process.argv[2]!) as {
  url: string
  user: string
  password: string
  host: string
  concurrency: number
}
const client = await connect({ url: input.url, user: input.user, password: input.password })
try {
  let groups: string[][] = []
  const t0 = performance.now()
  const report = await shutdownHost(
    client,
    { host: input.host, concurrency: input.concurrency, cleanTimeoutMs: 3_600_000 },
    { emit: (e) => e.kind === 'plan' && (groups = e.groups.map((g) => g.vms.map((v) => v.name))) }
  )
  const ms = performance.now() - t0
  const failures = report.results.filter((r) => r.status !== 'ok')
  const failed = failures.length
  if (failed) console.error(JSON.stringify(failures.slice(0, 3)))
  console.log(JSON.stringify({ ms, groups, failed, first: failures[0] }))
} finally {
  await client.close()
}
