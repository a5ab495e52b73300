import { describe, expect } from 'vitest'
import { connect, type Ref, type XapiEvent } from '../src/index.js'
import { test } from './helpers/sim.js'

async function nextMatching(
  events: AsyncIterator<XapiEvent>,
  pred: (e: XapiEvent) => boolean
): Promise<XapiEvent> {
  for (;;) {
    const { value, done } = await events.next()
    if (done) throw new Error('events ended')
    if (pred(value)) return value
  }
}

describe.each(['json-rpc', 'xml-rpc'] as const)('watchEvents over %s', (transport) => {
  test('yields a snapshot then changes, and ends with the abort reason', async ({ opts }) => {
    await using xapi = await connect({ ...opts, transport })
    const ctrl = new AbortController()
    const events = xapi.watchEvents(['task'], { signal: ctrl.signal, timeoutS: 1 })
    const first = await xapi.call<string>('task.create', 'first', '')
    const add = await nextMatching(events, (e) => e.ref === first)
    expect(add).toMatchObject({ class: 'task', operation: 'add', ref: first })
    expect(add.snapshot).toMatchObject({ name_label: 'first', status: 'pending' })
    expect(add.snapshot?.created).toBeInstanceOf(Date)
    await xapi.call('task.set_progress', first, 0.25)
    const mod = await nextMatching(
      events,
      (e) => e.ref === first && e.operation === 'mod' && e.snapshot?.progress === 0.25
    )
    expect(mod.snapshot).toMatchObject({ name_label: 'first', status: 'pending' })
    const reason = new Error('done watching')
    const pending = nextMatching(events, () => false)
    ctrl.abort(reason)
    await expect(pending).rejects.toBe(reason)
  })

  test('survives EVENTS_LOST and an expired session', async ({ sim, opts }) => {
    await using xapi = await connect({ ...opts, transport })
    const events = xapi.watchEvents(['task'], { timeoutS: 1 })
    const first = await xapi.call<string>('task.create', 'first', '')
    await nextMatching(events, (e) => e.ref === first)
    sim.faults.failMethod('event.from', 'EVENTS_LOST', [], { times: 1 })
    sim.faults.expireSessionsAfter(3)
    const second = await xapi.call<string>('task.create', 'second', '')
    const seen = await nextMatching(events, (e) => e.ref === second)
    expect(seen.snapshot).toMatchObject({ name_label: 'second' })
    await events.return()
    expect(
      sim.calls.filter((c) => c.method === 'session.login_with_password').length
    ).toBeGreaterThan(1)
  })
})

describe('closing', () => {
  test('close() ends event watchers and task waits with XAPI_CLIENT_CLOSED', async ({ opts }) => {
    const xapi = await connect(opts)
    const events = xapi.watchEvents(['task'], { timeoutS: 30 })
    const task = await xapi.call<Ref<'task'>>('task.create', 'pending forever', '')
    await nextMatching(events, (e) => e.ref === task)
    const next = expect(nextMatching(events, () => false)).rejects.toMatchObject({
      code: 'XAPI_CLIENT_CLOSED',
    })
    const waiting = expect(xapi.watchTask(task)).rejects.toMatchObject({
      code: 'XAPI_CLIENT_CLOSED',
    })
    await xapi.close()
    await next
    await waiting
  })
})
