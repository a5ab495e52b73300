import { spawn } from 'node:child_process'
import { once } from 'node:events'
import http from 'node:http'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { login, methodCall, ok } from './rpc.js'

const CLI = fileURLToPath(new URL('../src/cli.ts', import.meta.url))

function startCli(args: string[]) {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  const lines = createInterface({ input: child.stdout })
  const first = Promise.race([
    once(lines, 'line').then(([l]) => JSON.parse(l as string)),
    once(child, 'exit').then(([code]) => ({ exitCode: code as number })),
  ])
  return { child, first, stderr: () => stderr }
}

describe('cli', () => {
  it('prints one JSON line once listening, serves it, and exits 0 on SIGTERM', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'xapi-sim-cli-'))
    const socket = join(dir, 'xapi')
    const { child, first, stderr } = startCli([
      '--seed',
      'two-pools',
      '--port',
      '0',
      '--time-scale',
      '0.01',
      '--socket',
      socket,
    ])
    try {
      const info = await first
      if ('exitCode' in info) throw new Error(`cli exited ${info.exitCode}: ${stderr()}`)
      expect(Object.keys(info).sort()).toEqual(['fingerprint', 'password', 'pools', 'user'])
      expect(info.pools.map((p: any) => p.name)).toEqual(['pool-a', 'pool-b'])
      expect(info.pools[0].master).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
      expect(info.pools[0].hosts[0]).toBe(info.pools[0].master)
      const s = await login(info.pools[1].master, info.user, info.password)
      expect(await ok(info.pools[1].master, 'pool.get_all', s)).toHaveLength(1)
      // the unix socket serves pool A's master (login still needed)
      const body = methodCall('session.login_with_password', [info.user, info.password])
      const answer = await new Promise<string>((resolve, reject) => {
        const req = http.request({ socketPath: socket, path: '/', method: 'POST' }, (res) => {
          let t = ''
          res.on('data', (d) => (t += d))
          res.on('end', () => resolve(t))
        })
        req.on('error', reject)
        req.end(body)
      })
      expect(answer).toContain('<value>Success</value>')
      expect(stderr()).toContain('pool pool-a')
      child.kill('SIGTERM')
      const [code] = await once(child, 'exit')
      expect(code).toBe(0)
    } finally {
      child.kill('SIGKILL')
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('takes consecutive ports with --port N', async () => {
    const base = 20000 + Math.floor(Math.random() * 20000)
    const { child, first, stderr } = startCli(['--seed', 'small', '--port', String(base)])
    try {
      const info = await first
      if ('exitCode' in info) throw new Error(`cli exited ${info.exitCode}: ${stderr()}`)
      expect(info.pools[0].hosts).toEqual([
        `http://127.0.0.1:${base}`,
        `http://127.0.0.1:${base + 1}`,
      ])
    } finally {
      if (child.exitCode === null) {
        child.kill('SIGTERM')
        await once(child, 'exit')
      }
    }
  })

  it('applies fault flags', async () => {
    const { child, first, stderr } = startCli([
      '--seed',
      'small',
      '--time-scale',
      '0.001',
      '--fault-fail',
      'VM.start=NO_HOSTS_AVAILABLE',
      '--fault-stubborn',
      'web-01=no-pv',
      '--fault-expire-sessions',
      '5',
    ])
    try {
      const info = await first
      if ('exitCode' in info) throw new Error(`cli exited ${info.exitCode}: ${stderr()}`)
      const url = info.pools[0].master
      const s = await login(url, info.user, info.password)
      const [vm] = await ok(url, 'VM.get_by_name_label', s, 'build-01')
      const { failure } = await import('./rpc.js')
      expect(await failure(url, 'VM.start', s, vm, false, false)).toEqual(['NO_HOSTS_AVAILABLE'])
      const [web] = await ok(url, 'VM.get_by_name_label', s, 'web-01')
      expect(await ok(url, 'VM.get_allowed_operations', s, web)).not.toContain('clean_shutdown')
      await ok(url, 'pool.get_all', s)
      expect(await failure(url, 'pool.get_all', s)).toEqual(['SESSION_INVALID', s])
    } finally {
      if (child.exitCode === null) {
        child.kill('SIGTERM')
        await once(child, 'exit')
      }
    }
  })

  it('exits 2 with every problem of a bad seed file named by path', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'xapi-sim-seed-'))
    const file = join(dir, 'seed.json')
    await writeFile(
      file,
      JSON.stringify({
        pools: [
          {
            name: 'p',
            hosts: [{ name: 'h' }],
            srs: [],
            networks: [],
            vms: [{ name: 'v', powerState: 'On', host: 'nope' }],
          },
        ],
      })
    )
    const { child, first, stderr } = startCli(['--seed', file])
    const r = await first
    if (child.exitCode === null) await once(child, 'exit')
    await rm(dir, { recursive: true, force: true })
    expect(r).toEqual({ exitCode: 2 })
    expect(stderr()).toContain('pools.0.vms.0.powerState')
  })
})
