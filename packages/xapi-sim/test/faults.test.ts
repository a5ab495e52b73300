import http from 'node:http'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { startSimulator, type Simulator } from '../src/index.js'
import { failure, login, methodCall, ok, post, runAsync } from './rpc.js'

let sim: Simulator
let url: string
let s: string

beforeEach(async () => {
  sim = await startSimulator({ seed: 'small', timeScale: 0.001 })
  url = sim.pools[0]!.masterUrl
  s = await login(url, sim.user, sim.password)
})
afterEach(() => sim.close())

describe('faults', () => {
  it('expireSessionsAfter(n): SESSION_INVALID after n calls, a new login works', async () => {
    sim.faults.expireSessionsAfter(2)
    await ok(url, 'pool.get_all', s)
    await ok(url, 'pool.get_all', s)
    expect(await failure(url, 'pool.get_all', s)).toEqual(['SESSION_INVALID', s])
    const s2 = await login(url, sim.user, sim.password)
    expect(await ok(url, 'pool.get_all', s2)).toHaveLength(1)
  })

  it('makeMaster: the old master answers HOST_IS_SLAVE with the new address; sessions stay valid', async () => {
    const [h1, h2] = sim.pools[0]!.hosts
    sim.faults.makeMaster('pool-a', h2!.name)
    expect(sim.pools[0]!.masterUrl).toBe(h2!.url)
    expect(await failure(h1!.url, 'pool.get_all', s)).toEqual([
      'HOST_IS_SLAVE',
      new URL(h2!.url).host,
    ])
    expect(await ok(h2!.url, 'pool.get_master', s, (await ok(h2!.url, 'pool.get_all', s))[0])).toBe(
      h2!.ref
    )
  })

  it('pool.designate_new_master moves the master like a real transition', async () => {
    const [h1, h2] = sim.pools[0]!.hosts
    await ok(url, 'pool.designate_new_master', s, h2!.ref)
    expect(sim.pools[0]!.masterUrl).toBe(h2!.url)
    expect((await failure(h1!.url, 'pool.get_all', s))[0]).toBe('HOST_IS_SLAVE')
  })

  it('failMethod: sync calls fail; Async calls get a failed task; times is honoured', async () => {
    const [vm] = await ok(url, 'VM.get_by_name_label', s, 'web-01')
    sim.faults.failMethod('VM.clean_shutdown', 'VM_SHUTDOWN_TIMEOUT', [vm, '1200'], { times: 2 })
    expect(await failure(url, 'VM.clean_shutdown', s, vm)).toEqual([
      'VM_SHUTDOWN_TIMEOUT',
      vm,
      '1200',
    ])
    const t = await runAsync(url, s, 'VM.clean_shutdown', vm)
    expect(t).toMatchObject({ status: 'failure', error_info: ['VM_SHUTDOWN_TIMEOUT', vm, '1200'] })
    expect(await ok(url, 'VM.get_power_state', s, vm)).toBe('Running')
    await ok(url, 'VM.clean_shutdown', s, vm)
    expect(await ok(url, 'VM.get_power_state', s, vm)).toBe('Halted')
  })

  it('dropConnections: the socket is destroyed without an answer, then service resumes', async () => {
    sim.faults.dropConnections({ method: 'VM.get_all', times: 1 })
    const body = methodCall('VM.get_all', [s])
    const err = await new Promise<Error>((resolve) => {
      const req = http.request(url, { method: 'POST', agent: false }, () =>
        resolve(new Error('answered'))
      )
      req.on('error', resolve)
      req.end(body)
    })
    expect((err as NodeJS.ErrnoException).code).toMatch(/ECONNRESET|socket hang up/)
    expect((await ok(url, 'VM.get_all', s)).length).toBeGreaterThan(0)
  })

  it('latencyMs delays answers; clear() removes every fault', async () => {
    sim.faults.latencyMs(200)
    sim.faults.expireSessionsAfter(0)
    sim.faults.clear()
    expect(await ok(url, 'pool.get_all', s)).toHaveLength(1)
    sim.faults.latencyMs(150)
    await ok(url, 'pool.get_all', s)
    expect(sim.calls.at(-1)!.durationMs).toBeGreaterThanOrEqual(150)
  })
})

describe('recorded calls', () => {
  it('records method, redacted params, session uuid, host, outcome and error', async () => {
    await failure(url, 'session.login_with_password', 'root', 'hunter2')
    await failure(url, 'VM.get_record', s, 'OpaqueRef:x')
    const [login, call] = sim.calls.slice(-2)
    expect(login).toMatchObject({
      method: 'session.login_with_password',
      params: ['root', '***'],
      outcome: 'failure',
      host: 'xcp-a1',
    })
    expect(call).toMatchObject({
      method: 'VM.get_record',
      params: ['***', 'OpaqueRef:x'],
      session: await ok(url, 'session.get_uuid', s, s),
      outcome: 'failure',
      error: ['HANDLE_INVALID', 'VM', 'OpaqueRef:x'],
      transport: 'xml-rpc',
    })
    expect(JSON.stringify(sim.calls)).not.toContain(sim.password)
    expect(JSON.stringify(sim.calls)).not.toContain(s)
    const r = await post(url, '/', '<garbage')
    expect(r.status).toBe(500)
    expect(sim.calls.at(-1)).toMatchObject({ outcome: 'error' })
  })
})
