import { describe, expect } from 'vitest'
import { XapiError, connect, isXapiError, type Ref } from '../src/index.js'
import { test } from './helpers/sim.js'

const RESULT = '<value><array><data><value>OpaqueRef:vm-1</value></data></array></value>'

describe.each(['json-rpc', 'xml-rpc'] as const)('tasks over %s', (transport) => {
  test('createTask: waits, reports progress, decodes the result, destroys the task', async ({
    sim,
    opts,
  }) => {
    await using xapi = await connect({ ...opts, transport })
    const task = await xapi.createTask('import', 'test')
    const progress: number[] = []
    const done = task.wait({ onProgress: (p) => progress.push(p) })
    await xapi.call('task.set_progress', task.ref, 0.5)
    await expect.poll(() => progress).toContain(0.5)
    await xapi.call('task.set_result', task.ref, RESULT)
    await xapi.call('task.set_status', task.ref, 'success')
    expect(await done).toEqual(['OpaqueRef:vm-1'])
    expect(progress).toEqual([...progress].sort())
    expect(progress.at(-1)).toBe(1)
    expect(sim.calls.filter((c) => c.method === 'task.destroy')).toHaveLength(1)
    expect(
      isXapiError(
        await xapi.call('task.get_record', task.ref).catch((e: unknown) => e),
        'HANDLE_INVALID'
      )
    ).toBe(true)
  })

  test('a failed task rejects with its error_info, the task ref attached', async ({ opts }) => {
    await using xapi = await connect({ ...opts, transport })
    const task = await xapi.createTask('export')
    const done = task.wait()
    await xapi.call('task.set_error_info', task.ref, [
      'VM_BAD_POWER_STATE',
      'OpaqueRef:vm',
      'halted, suspended',
      'running',
    ])
    await xapi.call('task.set_status', task.ref, 'failure')
    const error = (await done.catch((e: unknown) => e)) as XapiError
    expect(error).toBeInstanceOf(XapiError)
    expect(error).toMatchObject({
      code: 'VM_BAD_POWER_STATE',
      params: ['OpaqueRef:vm', 'halted, suspended', 'running'],
      task: task.ref,
    })
  })

  test('a task cancelled by someone else rejects with TASK_CANCELLED', async ({ opts }) => {
    await using xapi = await connect({ ...opts, transport })
    const ref = await xapi.call<Ref<'task'>>('task.create', 'other', '')
    const done = xapi.watchTask(ref)
    await xapi.call('task.set_status', ref, 'cancelled')
    await expect(done).rejects.toMatchObject({ code: 'TASK_CANCELLED', params: [ref], task: ref })
    // watchTask does not own the task: it is still there.
    expect(await xapi.call('task.get_status', ref)).toBe('cancelled')
  })

  test('aborting a wait cancels and destroys the task, rejecting with the reason', async ({
    sim,
    opts,
  }) => {
    await using xapi = await connect({ ...opts, transport })
    const task = await xapi.createTask('transfer')
    const ctrl = new AbortController()
    const done = task.wait({ signal: ctrl.signal })
    const reason = new Error('operator pressed ^C')
    ctrl.abort(reason)
    await expect(done).rejects.toBe(reason)
    const methods = sim.calls.map((c) => c.method)
    expect(methods).toContain('task.cancel')
    expect(methods.indexOf('task.destroy')).toBeGreaterThan(methods.indexOf('task.cancel'))
  })

  test('callAsync runs Async.<method>, throws the task error and always destroys the task', async ({
    sim,
    opts,
  }) => {
    await using xapi = await connect({ ...opts, transport })
    const target = await xapi.call<Ref<'task'>>('task.create', 'not cancellable', '')
    await xapi.call('task.set_status', target, 'success')
    // task.cancel on a finished task: the Async task succeeds (nothing to cancel).
    expect(await xapi.callAsync('task.cancel', [target])).toBe('')
    sim.faults.failMethod('task.cancel', 'OPERATION_NOT_ALLOWED', ['Task cannot be cancelled'], {
      times: 1,
    })
    const error = (await xapi
      .callAsync('task.cancel', [target])
      .catch((e: unknown) => e)) as XapiError
    expect(error).toMatchObject({
      code: 'OPERATION_NOT_ALLOWED',
      params: ['Task cannot be cancelled'],
    })
    expect(error.task).toMatch(/^OpaqueRef:/)
    const asyncCalls = sim.calls.filter((c) => c.method === 'Async.task.cancel')
    const destroys = sim.calls.filter((c) => c.method === 'task.destroy')
    expect(asyncCalls).toHaveLength(2)
    expect(destroys).toHaveLength(2)
  })

  test('falls back to polling when event.from is unavailable', async ({ sim, opts }) => {
    await using xapi = await connect({ ...opts, transport })
    sim.faults.failMethod('event.from', 'MESSAGE_METHOD_UNKNOWN', ['event.from'])
    const task = await xapi.createTask('poll')
    const done = task.wait()
    await xapi.call('task.set_result', task.ref, '<value>OpaqueRef:vdi</value>')
    await xapi.call('task.set_status', task.ref, 'success')
    expect(await done).toBe('OpaqueRef:vdi')
    expect(sim.calls.filter((c) => c.method === 'task.get_record').length).toBeGreaterThan(0)
  })
})
