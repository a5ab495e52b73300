/**
 * `npm run demo`: the main job, end to end, against the embedded simulator (seed `demo`: pool A
 * with 3 hosts, pool B with 2). A batch migration from A to B, a verified bulk export of B into
 * ./demo-out, then a clean shutdown of a host of A, each by the real script in its own process.
 */
import { rm } from 'node:fs/promises'
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startSimulator } from '@xapi-ops/xapi-sim'
import { $ } from 'zx'

const here = fileURLToPath(new URL('.', import.meta.url))
const root = resolve(here, '..')
// XAPI_OPS_DEMO_OUT: where the exports go (the tests point it at a temporary directory).
const outDir = resolve(root, process.env.XAPI_OPS_DEMO_OUT ?? 'demo-out')
const bold = (s: string) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s)

function say(...lines: string[]) {
  process.stdout.write(`\n${lines.map((l, i) => (i ? `  ${l}` : bold(`▶ ${l}`))).join('\n')}\n\n`)
}

/** Runs one of our scripts as an operator would, with the password in the environment. */
async function run(script: string, args: string[], env: Record<string, string>): Promise<number> {
  const result = await $({
    cwd: root,
    env: { ...process.env, ...env },
    stdio: 'inherit',
    nothrow: true,
    quiet: true,
  })`${process.execPath} --import tsx ${resolve(here, script)} ${args}`
  return result.exitCode ?? (result.signal ? 130 : 1)
}

const timeScale = Number(process.env.XAPI_OPS_DEMO_TIME_SCALE ?? 0.05)
say(
  'Starting the embedded XAPI simulator (seed "demo")',
  `Two pools on 127.0.0.1, each host on its own port; simulated time runs ${1 / timeScale}× faster than real time.`
)
const sim = await startSimulator({ seed: 'demo', timeScale })
type SimPool = NonNullable<(typeof sim.pools)[number]>
const [poolA, poolB] = sim.pools
if (!poolA || !poolB) throw new Error('the demo seed must have two pools')
for (const p of sim.pools)
  console.log(`  ${p.name}: master ${p.masterUrl}, ${p.hosts.length} hosts`)

const auth = { XAPI_USER: sim.user, XAPI_PASSWORD: sim.password }
const codes: Record<string, number> = {}
let interrupted = false
const onSignal = () => {
  interrupted = true
}
process.on('SIGINT', onSignal)
process.on('SIGTERM', onSignal)

/** The three steps; returns early after a Ctrl-C (the script that was running has cleaned up). */
async function steps(poolA: SimPool, poolB: SimPool): Promise<void> {
  say(
    `1/3 Batch migration: VMs tagged "ci" or "dev" from ${poolA.name} to ${poolB.name}`,
    'vm-migrate plans first (SR and network maps, free space, name clashes), then copies each VM,',
    'verifies it on the destination and only then deletes the source.'
  )
  codes.migrate = await run(
    'vm-migrate.ts',
    ['--tag', 'ci', '--tag', 'dev', '--delete-source', '--start', '--concurrency', '2'],
    {
      XAPI_FROM_URL: poolA.masterUrl,
      XAPI_FROM_USER: sim.user,
      XAPI_FROM_PASSWORD: sim.password,
      XAPI_TO_URL: poolB.masterUrl,
      XAPI_TO_USER: sim.user,
      XAPI_TO_PASSWORD: sim.password,
    }
  )
  if (interrupted) return

  await rm(outDir, { recursive: true, force: true })
  say(
    `2/3 Verified bulk export of every VM of ${poolB.name} into ${outDir}`,
    'Running VMs are exported from a snapshot; each XVA is verified block by block while it is',
    'written, fsynced, then listed in manifest.json and SHA256SUMS.'
  )
  codes.export = await run(
    'vm-export.ts',
    ['--all', '--out', outDir, '--compress', 'zstd', '--concurrency', '2'],
    { XAPI_URL: poolB.masterUrl, ...auth }
  )
  if (interrupted) return

  const host = poolA.hosts[0]!
  say(
    `3/3 Clean shutdown of host ${host.name} in ${poolA.name}`,
    'What a UPS or systemd hook runs: VMs grouped by their order, clean shutdown with a timeout,',
    'hard shutdown as a fallback, VMs with other_config:auto_poweroff=false left alone.'
  )
  codes.shutdown = await run(
    'host-shutdown.ts',
    ['--host', host.name, '--clean-timeout', '30', '--deadline', '600'],
    { XAPI_URL: poolA.masterUrl, ...auth }
  )
}

try {
  await steps(poolA, poolB)
} finally {
  await sim.close()
}

if (interrupted) {
  say('Interrupted: the script that was running cleaned up and stopped; the simulator is closed.')
  process.exit(130)
}
const ok = Object.values(codes).every((c) => c === 0)
say(
  ok ? 'Done.' : `Done, with failures (exit codes: ${JSON.stringify(codes)}).`,
  `Exports, manifest.json and SHA256SUMS: ${outDir}`,
  '',
  'Rerun each step by hand against a simulator of your own:',
  '  npm run sim -- --seed demo --port 8080 --time-scale 0.05   # prints URLs, user and password',
  '  export XAPI_PASSWORD=<password printed by the simulator>',
  '  XAPI_FROM_URL=http://127.0.0.1:8080 XAPI_TO_URL=http://127.0.0.1:8083 \\',
  '    XAPI_FROM_PASSWORD=$XAPI_PASSWORD XAPI_TO_PASSWORD=$XAPI_PASSWORD \\',
  '    npx tsx scripts/vm-migrate.ts --tag ci --tag dev --dry-run',
  '  npx tsx scripts/vm-export.ts --url http://127.0.0.1:8083 --all --out ./demo-out',
  '  npx tsx scripts/host-shutdown.ts --url http://127.0.0.1:8080 --host xcp-a1 --dry-run',
  '',
  'Point them at a real pool: see "Real pools" in README.md.'
)
process.exitCode = ok ? 0 : 1
