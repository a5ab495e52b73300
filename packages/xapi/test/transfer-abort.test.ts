import { createReadStream, createWriteStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { describe, expect } from 'vitest'
import { exportVm, importVm } from '../src/index.js'
import { it, taskCount, vmNames, vmRef } from './transfer-fixtures.js'

const reason = () => new Error('operator abort')

describe('abort', () => {
  it('before the start: nothing is created', async ({ sim, src, dst }) => {
    const ctl = new AbortController()
    ctl.abort(reason())
    const calls = sim.calls.length
    await expect(exportVm(src, vmRef(sim, 'halted'), { signal: ctl.signal })).rejects.toThrow(
      'operator abort'
    )
    await expect(
      importVm(dst, createReadStream('/dev/null'), { signal: ctl.signal })
    ).rejects.toThrow('operator abort')
    expect(sim.calls.slice(calls).map((c) => c.method)).not.toContain('task.create')
  })

  it('during an export: body and task fail with the reason, the task is cancelled and destroyed', async ({
    sim,
    src,
  }) => {
    const vm = vmRef(sim, 'big')
    const ctl = new AbortController()
    const exported = await exportVm(src, vm, { signal: ctl.signal })
    let seen = 0
    const consumed = (async () => {
      for await (const chunk of exported.body) {
        seen += (chunk as Buffer).length
        if (seen > 4 * 2 ** 20) ctl.abort(reason())
      }
    })()
    await expect(consumed).rejects.toThrow('operator abort')
    await expect(exported.task).rejects.toThrow('operator abort')
    expect(sim.calls.some((c) => c.method === 'task.cancel')).toBe(true)
    expect(taskCount(sim, 0)).toBe(0)
    await expect.poll(() => sim.db.get(vm)?.current_operations).toEqual({})
  })

  it('during an import: no VM and no task is left behind', async ({ sim, src, dst, dir }) => {
    const file = join(dir, 'big.xva')
    const exported = await exportVm(src, vmRef(sim, 'big'))
    await Promise.all([pipeline(exported.body, createWriteStream(file)), exported.task])
    const { size } = await stat(file)
    const ctl = new AbortController()
    const pending = importVm(dst, createReadStream(file), {
      length: size,
      signal: ctl.signal,
      onProgress: (p) => {
        if (p.bytes > 8 * 2 ** 20) ctl.abort(reason())
      },
    })
    await expect(pending).rejects.toThrow('operator abort')
    expect(sim.calls.some((c) => c.method === 'task.cancel')).toBe(true)
    await expect.poll(() => vmNames(sim, 1)).toEqual([])
    await expect.poll(() => taskCount(sim, 1)).toBe(0)
  })

  it('after the stream, before the verdict: the import task is cancelled, nothing left', async ({
    sim,
    src,
    dst,
    dir,
  }) => {
    const file = join(dir, 'vm.xva')
    const exported = await exportVm(src, vmRef(sim, 'halted'))
    await Promise.all([pipeline(exported.body, createWriteStream(file)), exported.task])
    const { size } = await stat(file)
    // xapi still busy with the last bytes (they sit in the socket buffers) when we abort.
    sim.faults.transfer.stallSeconds(3, { afterBytes: size - 4096, on: 'import' })
    const ctl = new AbortController()
    let sentAll = false
    const pending = importVm(dst, createReadStream(file), {
      length: size,
      signal: ctl.signal,
      onProgress: (p) => {
        if (p.bytes === size && !sentAll) {
          sentAll = true
          setTimeout(() => ctl.abort(reason()), 100)
        }
      },
    })
    await expect(pending).rejects.toThrow('operator abort')
    expect(sentAll).toBe(true)
    expect(sim.calls.some((c) => c.method === 'task.cancel')).toBe(true)
    await expect.poll(() => vmNames(sim, 1)).toEqual([])
    expect(taskCount(sim, 1)).toBe(0)
  })

  it('cancelled by someone else: TASK_CANCELLED from the task', async ({ sim, src }) => {
    sim.faults.transfer.throttleBytesPerSec(2 * 2 ** 20, { on: 'export' })
    const exported = await exportVm(src, vmRef(sim, 'halted'))
    const body = (async () => {
      for await (const _ of exported.body) {
        // drain
      }
    })()
    await src.call('task.cancel', exported.taskRef)
    const [bodyResult, taskResult] = await Promise.allSettled([body, exported.task])
    expect(taskResult).toMatchObject({
      status: 'rejected',
      reason: { name: 'XapiError', code: 'TASK_CANCELLED' },
    })
    expect(bodyResult).toMatchObject({ status: 'rejected', reason: { code: 'TASK_CANCELLED' } })
    expect(taskCount(sim, 0)).toBe(0)
  })

  it('after the stream: a finished transfer ignores a later abort', async ({ sim, src, dst }) => {
    const ctl = new AbortController()
    const exported = await exportVm(src, vmRef(sim, 'halted'), { signal: ctl.signal })
    const [vms] = await Promise.all([
      importVm(dst, exported.body, { signal: ctl.signal }),
      exported.task,
    ])
    ctl.abort(reason())
    expect(vms).toHaveLength(1)
    expect(vmNames(sim, 1)).toEqual(['halted'])
    expect(taskCount(sim, 0) + taskCount(sim, 1)).toBe(0)
  })
})
