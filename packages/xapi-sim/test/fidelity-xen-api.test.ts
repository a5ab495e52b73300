import { createClient, type XenApi } from 'xen-api'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startSimulator, type Simulator } from '../src/index.js'

/*
 * Xen Orchestra's `xen-api` client (written by nobody here) against the simulator, over both
 * transports: connect (login, pool.get_all_records, system.listMethods, event.inject, the
 * get_all_records of watched types, event.from loop), list VMs, an Async call and its task
 * (watched through events), an event after a change.
 */

let sim: Simulator
beforeAll(async () => {
  sim = await startSimulator({ seed: 'small', timeScale: 0.001 })
})
afterAll(() => sim.close())

async function until<T>(fn: () => T | undefined, what: string): Promise<T> {
  for (let i = 0; i < 500; i++) {
    const v = fn()
    if (v !== undefined && v !== false) return v
    await new Promise((r) => setTimeout(r, 10))
  }
  throw new Error(`timed out waiting for ${what}`)
}

for (const transport of ['xml-rpc', 'json-rpc', 'auto'] as const) {
  describe(`xen-api over ${transport}`, () => {
    let xapi: XenApi
    beforeAll(async () => {
      xapi = createClient({
        url: sim.pools[0]!.masterUrl,
        auth: { user: sim.user, password: sim.password },
        transport,
        watchEvents: ['VM', 'host', 'pool', 'task'],
        callTimeout: 10_000,
      })
      await xapi.connect()
      await xapi.objectsFetched
    })
    afterAll(() => xapi.disconnect())

    it('connects and lists the VMs with their links', () => {
      const vms = Object.values(xapi.objects.all).filter((o) => o.$type === 'VM')
      expect(vms.length).toBe(sim.db.pool('pool-a').all('VM').size)
      const web = vms.find((v) => v.name_label === 'web-01')!
      expect(web.power_state).toBe('Running')
      expect(web.$resident_on?.$type).toBe('host')
      expect(web.is_a_template).toBe(false)
      const used = sim.calls.filter((c) => c.method === 'pool.get_all_records').at(-1)!.transport
      expect(used).toBe(transport === 'xml-rpc' ? 'xml-rpc' : 'json-rpc')
    })

    it('runs an Async call, watches its task to the end, and sees the change through events', async () => {
      const vm = Object.values(xapi.objects.all).find(
        (o) => o.$type === 'VM' && o.name_label === 'build-01'
      )!
      const clone: string = await xapi.callAsync('VM.clone', vm.$ref, `clone over ${transport}`)
      expect(clone).toMatch(/^OpaqueRef:/)
      const obj = await until(
        () => xapi.objects.all[sim.db.pool('pool-a').get(clone)?.uuid as string],
        'the clone object'
      )
      expect(obj.name_label).toBe(`clone over ${transport}`)
      await xapi.call('VM.set_name_description', clone, 'changed')
      await until(
        () => xapi.getObjectByRef(clone, null)?.name_description === 'changed',
        'the event'
      )
      await xapi.call('VM.destroy', clone)
    })

    it('surfaces XAPI failures as XapiError with code and params', async () => {
      const err = await xapi.call('VM.get_record', 'OpaqueRef:nope').catch((e: unknown) => e)
      expect(err).toMatchObject({ code: 'HANDLE_INVALID', params: ['VM', 'OpaqueRef:nope'] })
      const vm = Object.values(xapi.objects.all).find(
        (o) => o.$type === 'VM' && o.name_label === 'build-01'
      )!
      const failed = await xapi.callAsync('VM.clean_shutdown', vm.$ref).catch((e: unknown) => e)
      expect(failed).toMatchObject({
        code: 'VM_BAD_POWER_STATE',
        params: [vm.$ref, 'running', 'halted'],
      })
    })
  })
}
