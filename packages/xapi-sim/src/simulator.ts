import { readFile } from 'node:fs/promises'
import { SimFaults } from './faults.js'
import './methods/index.js'
import type { SimDb } from './model/db.js'
import { gcTasks } from './model/tasks.js'
import { BUILTIN_SEEDS, builtinSeed, type BuiltinSeed } from './seed/builtin.js'
import { buildPool } from './seed/build.js'
import { validateSeed, type SeedData } from './seed/schema.js'
import { listenHost, listenUnix, serveHost } from './server.js'
import { SimState, type SimCall } from './state.js'
import { makeHostCertificate, makeSelfSignedCertificate } from './tls.js'

/** The default password of the simulated `root` account. */
export const DEFAULT_PASSWORD = 'xapi-sim-demo'

export type SimulatorOptions = {
  /** A built-in seed name, a path to a JSON seed file, or seed data. @default 'small' */
  seed?: BuiltinSeed | SeedData | string
  /** Scale of simulated delays: 1 = real time, 0.01 = 100× faster. @default 1 */
  timeScale?: number
  /**
   * Serve HTTPS: the simulator makes a CA-capable self-signed certificate at start, served by the
   * first host of each pool, and signs one certificate per other host with it. @default false
   */
  tls?: boolean
  /** First port: hosts take port, port+1, …; 0 = any free port for each. @default 0 */
  port?: number
  /** Also serve the first pool's master on this unix socket (login still required). */
  socketPath?: string
  /** @default 'root' */
  user?: string
  /** @default DEFAULT_PASSWORD */
  password?: string
}

export type Simulator = {
  pools: {
    name: string
    masterUrl: string
    /** `fingerprint`: the SHA-256 fingerprint of the host's own certificate, with `tls`. */
    hosts: { name: string; url: string; uuid: string; ref: string; fingerprint?: string }[]
  }[]
  user: string
  password: string
  /**
   * SHA-256 fingerprint (`AA:BB:…`) of the simulator's certificate, with `tls`: the first host of
   * each pool serves it, the others their own (see `hosts[].fingerprint`), as xapi gives every
   * host its own self-signed certificate.
   */
  fingerprint?: string
  /** The simulator's certificate (PEM), with `tls`; a CA that signed every host's. */
  certificate?: string
  /** Every pool's objects: `db.pool(name)`, `db.find('VM', pred)`, `db.get(ref)`. */
  db: SimDb
  /** Recorded RPCs (secrets redacted), oldest first. */
  calls: SimCall[]
  faults: SimFaults
  close(): Promise<void>
  [Symbol.asyncDispose](): Promise<void>
}

/** Resolves the `seed` option to validated seed data; throws an Error listing every problem. */
export async function loadSeed(seed: SimulatorOptions['seed'] = 'small'): Promise<SeedData> {
  let data: unknown = seed
  let source = 'seed'
  if (typeof seed === 'string') {
    if ((BUILTIN_SEEDS as readonly string[]).includes(seed)) return builtinSeed(seed as BuiltinSeed)
    source = seed
    let text: string
    try {
      text = await readFile(seed, 'utf8')
    } catch (e) {
      throw new Error(
        `Unknown seed "${seed}": not one of ${BUILTIN_SEEDS.join(', ')}, and not a readable file (${(e as Error).message})`,
        { cause: e }
      )
    }
    try {
      data = JSON.parse(text)
    } catch (e) {
      throw new Error(`Seed file ${seed} is not valid JSON: ${(e as Error).message}`, { cause: e })
    }
  }
  const r = validateSeed(data)
  if (!r.ok) throw new Error(`Invalid ${source}:\n  ${r.errors.join('\n  ')}`)
  return r.value
}

/**
 * Starts a simulated XAPI deployment: every host of every pool listens on its own
 * 127.0.0.1 port, speaking XML-RPC (`/`, `/RPC2`, `/xmlrpc`) and JSON-RPC (`/jsonrpc`).
 *
 * @example
 * await using sim = await startSimulator({ seed: 'two-pools', timeScale: 0.01 })
 * const url = sim.pools[0].masterUrl
 */
export async function startSimulator(options: SimulatorOptions = {}): Promise<Simulator> {
  const timeScale = options.timeScale ?? 1
  if (!(timeScale >= 0) || !Number.isFinite(timeScale)) {
    throw new TypeError(
      `Expected \`timeScale\` to be a non-negative finite number, got ${options.timeScale}`
    )
  }
  const basePort = options.port ?? 0
  if (!Number.isInteger(basePort) || basePort < 0 || basePort > 65535) {
    throw new TypeError(`Expected \`port\` to be an integer in 0..65535, got ${options.port}`)
  }
  const seed = await loadSeed(options.seed)
  const tls = options.tls ? await makeSelfSignedCertificate() : undefined
  const state = new SimState({
    timeScale,
    user: options.user ?? 'root',
    password: options.password ?? DEFAULT_PASSWORD,
    scheme: tls ? 'https' : 'http',
  })
  state.faults = new SimFaults(state)
  state.fingerprint = tls?.fingerprint

  const closers: (() => Promise<void>)[] = []
  const close = async () => {
    state.closing.abort()
    clearInterval(gc)
    await Promise.all(closers.splice(0).map((c) => c()))
  }
  const gc = setInterval(
    () => {
      for (const p of state.pools) gcTasks(p.db, timeScale)
    },
    Math.max(50, Math.min(60_000, 60_000 * timeScale))
  )
  gc.unref()

  try {
    let nextPort = basePort
    for (const poolSeed of seed.pools) {
      const pool = buildPool(poolSeed)
      state.pools.push(pool)
      state.db.pools.set(pool.name, pool.db)
      for (const host of pool.hosts) {
        // As xapi, each host has its own certificate; the first of a pool serves the simulator's.
        const hostTls =
          tls && host !== pool.hosts[0] ? await makeHostCertificate(tls, host.name) : tls
        if (hostTls) host.certificate = { cert: hostTls.cert, fingerprint: hostTls.fingerprint }
        const l = await listenHost(state, host, {
          port: basePort === 0 ? 0 : nextPort++,
          tls: hostTls,
        })
        closers.push(l.close)
        host.port = l.port
        host.url = `${state.scheme}://127.0.0.1:${l.port}`
        const ctx = serveHost(state, host, l.server)
        if (options.socketPath && state.pools.length === 1 && host === pool.hosts[0]) {
          const u = await listenUnix(state, host, ctx, options.socketPath)
          closers.push(u.close)
        }
      }
    }
  } catch (e) {
    await close()
    throw e
  }

  const pools: Simulator['pools'] = state.pools.map((p) => ({
    name: p.name,
    get masterUrl() {
      return state.masterOf(p).url
    },
    hosts: p.hosts.map((h) => ({
      name: h.name,
      url: h.url,
      uuid: h.uuid,
      ref: h.ref,
      ...(h.certificate && { fingerprint: h.certificate.fingerprint }),
    })),
  }))
  return {
    pools,
    user: state.user,
    password: state.password,
    ...(tls ? { fingerprint: tls.fingerprint, certificate: tls.cert } : {}),
    db: state.db,
    calls: state.calls,
    faults: state.faults,
    close,
    [Symbol.asyncDispose]: close,
  }
}
