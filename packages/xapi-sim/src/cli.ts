/**
 * xapi-sim command line: starts the simulator, prints ONE JSON line on stdout once listening
 * (`{"pools":[{"name","master","hosts":[…]}],"user","password","fingerprint"}`), then human
 * lines on stderr, and runs until SIGINT/SIGTERM.
 *
 *   npx tsx packages/xapi-sim/src/cli.ts --seed small --port 0 [--tls] [--time-scale 0.1]
 */
import yargs from 'yargs'
import { hideBin } from 'yargs/helpers'
import { BUILTIN_SEEDS } from './seed/builtin.js'
import { startSimulator, type Simulator } from './simulator.js'

const argv = await yargs(hideBin(process.argv))
  .scriptName('xapi-sim')
  .usage('$0 [options]\n\nA simulated XAPI (XenServer/XCP-ng) pool for tests and demos.')
  .option('seed', {
    type: 'string',
    default: 'small',
    describe: `Built-in seed (${BUILTIN_SEEDS.join(', ')}) or path to a JSON seed file`,
  })
  .option('port', {
    type: 'number',
    default: 0,
    describe: 'First port (hosts take N, N+1, …); 0 = any',
  })
  .option('tls', {
    type: 'boolean',
    default: false,
    describe: 'Serve HTTPS with a self-signed certificate',
  })
  .option('time-scale', {
    type: 'number',
    default: 1,
    describe: 'Delay scale: 1 = real time, 0.01 = 100x faster',
  })
  .option('socket', {
    type: 'string',
    describe: 'Also serve the first pool master on this unix socket',
  })
  .option('user', { type: 'string', default: 'root' })
  .option('password', { type: 'string', describe: 'Password (default: a fixed demo password)' })
  .option('fault-expire-sessions', {
    type: 'number',
    describe: 'Sessions become invalid after N calls',
  })
  .option('fault-fail', {
    type: 'string',
    array: true,
    describe: 'METHOD=CODE[:param,param…]: fail a method (repeatable)',
  })
  .option('fault-latency', {
    type: 'number',
    describe: 'Delay every RPC answer by MS milliseconds',
  })
  .option('fault-drop', {
    type: 'string',
    array: true,
    describe: 'METHOD[=N]: drop connections of a method',
  })
  .option('fault-stubborn', {
    type: 'string',
    array: true,
    describe: 'VM=normal|slow|ignore|no-pv[:SECONDS]: guest behaviour (repeatable)',
  })
  .option('fault-master', { type: 'string', describe: 'POOL=HOST: fail over the pool master' })
  .strict()
  .help()
  .parse()

let sim: Simulator
try {
  sim = await startSimulator({
    seed: argv.seed,
    port: argv.port,
    tls: argv.tls,
    timeScale: argv['time-scale'],
    socketPath: argv.socket,
    user: argv.user,
    password: argv.password,
  })
} catch (e) {
  console.error(`xapi-sim: ${(e as Error).message}`)
  process.exit(2)
}

try {
  const f = sim.faults
  if (argv['fault-expire-sessions'] !== undefined)
    f.expireSessionsAfter(argv['fault-expire-sessions'])
  if (argv['fault-latency'] !== undefined) f.latencyMs(argv['fault-latency'])
  for (const spec of argv['fault-fail'] ?? []) {
    const m = /^([^=]+)=([^:]+)(?::(.*))?$/.exec(spec)
    if (!m) throw new Error(`--fault-fail expects METHOD=CODE[:params], got ${spec}`)
    f.failMethod(m[1]!, m[2]!, m[3] ? m[3].split(',') : [])
  }
  for (const spec of argv['fault-drop'] ?? []) {
    const [method, times] = spec.split('=')
    f.dropConnections({ method: method || undefined, times: times ? Number(times) : undefined })
  }
  for (const spec of argv['fault-stubborn'] ?? []) {
    const m = /^(.+)=(normal|slow|ignore|no-pv)(?::(\d+(?:\.\d+)?))?$/.exec(spec)
    if (!m)
      throw new Error(`--fault-stubborn expects VM=normal|slow|ignore|no-pv[:SECONDS], got ${spec}`)
    f.stubbornVm(m[1]!, m[2] as 'normal', m[3] ? { cleanShutdownS: Number(m[3]) } : {})
  }
  if (argv['fault-master']) {
    const [pool, host] = argv['fault-master'].split('=')
    f.makeMaster(pool!, host!)
  }
} catch (e) {
  console.error(`xapi-sim: ${(e as Error).message}`)
  await sim.close()
  process.exit(2)
}

process.stdout.write(
  JSON.stringify({
    pools: sim.pools.map((p) => ({
      name: p.name,
      master: p.masterUrl,
      hosts: p.hosts.map((h) => h.url),
    })),
    user: sim.user,
    password: sim.password,
    fingerprint: sim.fingerprint ?? null,
  }) + '\n'
)
for (const p of sim.pools) {
  console.error(`xapi-sim: pool ${p.name}: master ${p.masterUrl}`)
  for (const h of p.hosts) {
    const cert = h.fingerprint ? ` (certificate ${h.fingerprint})` : ''
    console.error(`xapi-sim:   host ${h.name} ${h.url}${cert}`)
  }
}
if (argv.socket) console.error(`xapi-sim: unix socket ${argv.socket}`)
console.error(`xapi-sim: user ${sim.user}; time scale ${argv['time-scale']}; Ctrl-C to stop`)

let stopping = false
const stop = async (signal: string) => {
  if (stopping) process.exit(130)
  stopping = true
  console.error(`xapi-sim: ${signal}, closing`)
  await sim.close()
  process.exit(0)
}
process.on('SIGINT', () => void stop('SIGINT'))
process.on('SIGTERM', () => void stop('SIGTERM'))
