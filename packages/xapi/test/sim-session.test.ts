import { describe, expect } from 'vitest'
import type { XapiError } from '../src/index.js'
import { NULL_REF, connect, createClient, isXapiError } from '../src/index.js'
import { test } from './helpers/sim.js'

describe.each(['json-rpc', 'xml-rpc', 'auto'] as const)('over %s', (transport) => {
  test('logs in, reads typed records and maps failures to XapiError', async ({ sim, opts }) => {
    await using xapi = await connect({ ...opts, transport })
    expect(xapi.transport).toBe(transport === 'auto' ? 'json-rpc' : transport)
    const vms = await xapi.getAllRecords('VM')
    expect(vms.size).toBeGreaterThan(0)
    for (const [ref, vm] of vms) {
      expect(ref).toMatch(/^OpaqueRef:/)
      expect(typeof vm.memory_static_max).toBe('number')
      expect(typeof vm.is_a_template).toBe('boolean')
      expect(vm.snapshot_time).toBeInstanceOf(Date)
    }
    const [ref, vm] = [...vms][0]!
    expect(await xapi.getRecord('VM', ref)).toEqual(vm)
    expect(await xapi.call('VM.get_name_label', ref)).toBe(vm.name_label)

    const error = await xapi.call('VM.get_record', NULL_REF).catch((e: unknown) => e)
    expect(isXapiError(error, 'HANDLE_INVALID')).toBe(true)
    expect(error).toMatchObject({ params: ['VM', NULL_REF], method: 'VM.get_record' })

    const login = sim.calls.find((c) => c.method === 'session.login_with_password')
    expect(JSON.stringify(login)).not.toContain(sim.password)
  })

  test('follows HOST_IS_SLAVE from a supporter to the master', async ({ sim, opts }) => {
    const pool = sim.pools[0]!
    await using xapi = await connect({ ...opts, url: pool.hosts[1]!.url, transport })
    expect(xapi.url).toBe(pool.masterUrl)
    expect(await xapi.call('pool.get_all')).toHaveLength(1)
  })

  test('follows a master failover mid-run', async ({ sim, opts }) => {
    const pool = sim.pools[0]!
    await using xapi = await connect({ ...opts, transport })
    sim.faults.makeMaster(pool.name, pool.hosts[1]!.name)
    expect(await xapi.call('pool.get_all')).toHaveLength(1)
    expect(xapi.url).toBe(pool.hosts[1]!.url)
  })

  test('re-logs in once, transparently, when the session expires mid-run', async ({
    sim,
    opts,
  }) => {
    await using xapi = await connect({ ...opts, transport })
    sim.faults.expireSessionsAfter(2)
    for (let i = 0; i < 5; i++) expect(await xapi.call('pool.get_all')).toHaveLength(1)
    expect(
      sim.calls.filter((c) => c.method === 'session.login_with_password').length
    ).toBeGreaterThan(1)
  })
})

describe('sessions', () => {
  test('concurrent first calls share one login; close logs out once', async ({ sim, opts }) => {
    const xapi = createClient(opts)
    await Promise.all(Array.from({ length: 10 }, () => xapi.call('pool.get_all')))
    expect(sim.calls.filter((c) => c.method === 'session.login_with_password')).toHaveLength(1)
    await Promise.all([xapi.close(), xapi.close()])
    await xapi.close()
    expect(sim.calls.filter((c) => c.method === 'session.logout')).toHaveLength(1)
    await expect(xapi.call('pool.get_all')).rejects.toMatchObject({ code: 'XAPI_CLIENT_CLOSED' })
  })

  test("logoutSession ends another session (host.migrate_receive's), never its own", async ({
    sim,
    opts,
  }) => {
    await using xapi = await connect(opts)
    const [host] = await xapi.call<string[]>('host.get_all')
    const [network] = await xapi.call<string[]>('network.get_all')
    const dest = await xapi.call<Record<string, string>>('host.migrate_receive', host, network, {})
    await xapi.logoutSession(dest.session_id!)
    const logouts = sim.calls.filter((c) => c.method === 'session.logout')
    expect(logouts).toHaveLength(1)
    expect(logouts[0]).toMatchObject({ outcome: 'success' })
    const ours = sim.calls.find((c) => c.method === 'host.migrate_receive')!.session
    expect(logouts[0]!.session).not.toBe(ours)
    // Gone already: not an error; the client's own session still works.
    await xapi.logoutSession(dest.session_id!)
    expect(await xapi.call('pool.get_all')).toHaveLength(1)
    await expect(xapi.logoutSession(await xapi.sessionRef())).rejects.toMatchObject({
      code: 'XAPI_CLIENT_INVALID_CALL',
    })
    await expect(xapi.logoutSession('not-a-ref')).rejects.toMatchObject({
      code: 'XAPI_CLIENT_INVALID_CALL',
    })
    expect(logouts[0]!.params).toEqual(['***'])
  })

  test('a second SESSION_INVALID in a row is reported, not looped on', async ({ sim, opts }) => {
    await using xapi = await connect(opts)
    sim.faults.failMethod('pool.get_all', 'SESSION_INVALID', ['OpaqueRef:whatever'], { times: 2 })
    const error = await xapi.call('pool.get_all').catch((e: unknown) => e)
    expect(isXapiError(error, 'SESSION_INVALID')).toBe(true)
    expect(await xapi.call('pool.get_all')).toHaveLength(1)
  })

  test('wrong password: a clear XapiError', async ({ opts }) => {
    const error = (await connect({ ...opts, password: 'nope' }).catch(
      (e: unknown) => e
    )) as XapiError
    expect(error.code).toBe('SESSION_AUTHENTICATION_FAILED')
    expect(error.message).toContain(`wrong user name or password for ${opts.url}`)
    expect(error.message).not.toContain('nope')
  })

  test('a getter is resent once over a dropped connection; a mutation is not', async ({
    sim,
    opts,
  }) => {
    await using xapi = await connect(opts)
    sim.faults.dropConnections({ times: 1, method: 'pool.get_all' })
    expect(await xapi.call('pool.get_all')).toHaveLength(1)
    const [pool] = await xapi.call<string[]>('pool.get_all')
    sim.faults.dropConnections({ times: 1, method: 'pool.set_name_description' })
    await expect(xapi.call('pool.set_name_description', pool, 'x')).rejects.toMatchObject({
      code: 'XAPI_CLIENT_TRANSPORT',
    })
  })
})
