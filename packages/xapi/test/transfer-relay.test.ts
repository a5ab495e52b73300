import { describe, expect } from 'vitest'
import { relayVm, type Ref } from '../src/index.js'
import {
  startTlsPools,
  diskHashes,
  it,
  progressRecorder,
  srRef,
  taskCount,
  vmNames,
  vmRef,
} from './transfer-fixtures.js'

describe('relayVm', () => {
  it('copies a VM pool to pool, verified in flight, byte for byte', async ({
    sim,
    src,
    dst,
    signal,
  }) => {
    const vm = vmRef(sim, 'big')
    const progress = progressRecorder()
    const tasks: Ref<'task'>[] = []
    const importTasks: Ref<'task'>[] = []
    const [copy, ...more] = await relayVm(src, vm, dst, {
      signal,
      onProgress: progress.onProgress,
      onExportTask: (task) => void tasks.push(task),
      onImportTask: (task) => void importTasks.push(task),
    })
    expect(more).toEqual([])
    expect(diskHashes(sim, copy!)).toEqual(diskHashes(sim, vm))
    expect(tasks).toHaveLength(1)
    // xapi marks what the import made with its task: the caller can find it after a crash.
    expect(importTasks).toHaveLength(1)
    expect(sim.db.get(copy!)!.other_config).toMatchObject({ import_task: importTasks[0] })
    expect(progress.check()).toEqual([])
    expect(taskCount(sim, 0) + taskCount(sim, 1)).toBe(0)
  })

  it('lands in the SR asked for, following the redirects of both sides', async ({
    sim,
    src,
    dst,
    signal,
  }) => {
    const vm = vmRef(sim, 'on-local-2')
    const [copy] = await relayVm(src, vm, dst, { sr: srRef(sim, 'dst-local-2'), signal })
    expect(diskHashes(sim, copy!)).toEqual(diskHashes(sim, vm))
  })

  it('over TLS, through the streams', async ({ signal }) => {
    await using pools = await startTlsPools()
    const { sim, src, dst } = pools
    const vm = vmRef(sim, 'halted')
    const importTasks: Ref<'task'>[] = []
    const [copy] = await relayVm(src, vm, dst, {
      signal,
      onImportTask: (task) => void importTasks.push(task),
    })
    expect(diskHashes(sim, copy!)).toEqual(diskHashes(sim, vm))
    expect(sim.db.get(copy!)!.other_config).toMatchObject({ import_task: importTasks[0] })
  })

  it('onImportTask rejecting: its error, before any byte, nothing left', async ({
    sim,
    src,
    dst,
  }) => {
    const refused = new Error('journal full')
    await expect(
      relayVm(src, vmRef(sim, 'halted'), dst, { onImportTask: () => Promise.reject(refused) })
    ).rejects.toBe(refused)
    await expect.poll(() => vmNames(sim, 1)).toEqual([])
    await expect.poll(() => taskCount(sim, 0) + taskCount(sim, 1)).toBe(0)
  })

  it('a corrupt block: the checksum error, nothing left on either side', async ({
    sim,
    src,
    dst,
  }) => {
    sim.faults.transfer.corruptBlock(0, 0)
    await expect(relayVm(src, vmRef(sim, 'big'), dst)).rejects.toMatchObject({
      code: 'IMPORT_ERROR',
      message: expect.stringMatching(/checksum failed/),
    })
    await expect.poll(() => vmNames(sim, 1)).toEqual([])
    expect(taskCount(sim, 0) + taskCount(sim, 1)).toBe(0)
  })

  it('the export dropped: the export task error, nothing left', async ({ sim, src, dst }) => {
    sim.faults.transfer.dropAfterBytes(2_000_000, { on: 'export' })
    await expect(relayVm(src, vmRef(sim, 'big'), dst)).rejects.toMatchObject({
      name: 'XapiError',
    })
    await expect.poll(() => vmNames(sim, 1)).toEqual([])
    expect(taskCount(sim, 0) + taskCount(sim, 1)).toBe(0)
  })

  it('the import refused: its error, the export ended', async ({ sim, src, dst }) => {
    await expect(
      relayVm(src, vmRef(sim, 'halted'), dst, { sr: 'OpaqueRef:no-such-sr' as Ref<'SR'> })
    ).rejects.toMatchObject({ name: 'XapiError', message: expect.not.stringMatching(/closed/) })
    expect(taskCount(sim, 0) + taskCount(sim, 1)).toBe(0)
    await expect.poll(() => sim.db.get(vmRef(sim, 'halted'))?.current_operations).toEqual({})
  })

  it('a failing onExportTask ends the relay before any byte moves', async ({ sim, src, dst }) => {
    await expect(
      relayVm(src, vmRef(sim, 'halted'), dst, {
        onExportTask: () => Promise.reject(new Error('journal full')),
      })
    ).rejects.toThrow('journal full')
    expect(sim.calls.some((c) => c.method === 'task.create' && c.host?.includes('dst'))).toBe(false)
    expect(taskCount(sim, 0) + taskCount(sim, 1)).toBe(0)
  })

  it('an abort mid-way: the reason, both tasks cancelled, nothing left', async ({
    sim,
    src,
    dst,
  }) => {
    sim.faults.transfer.throttleBytesPerSec(8 * 2 ** 20, { on: 'export' })
    const ctl = new AbortController()
    const relayed = relayVm(src, vmRef(sim, 'big'), dst, {
      signal: ctl.signal,
      onProgress: (p) => {
        if (p.bytes > 2 * 2 ** 20) ctl.abort(new Error('operator abort'))
      },
    })
    await expect(relayed).rejects.toThrow('operator abort')
    await expect.poll(() => vmNames(sim, 1)).toEqual([])
    expect(taskCount(sim, 0) + taskCount(sim, 1)).toBe(0)
  })

  it('a slow import reader is not a stall', async ({ sim, src, dst }) => {
    sim.faults.transfer.throttleBytesPerSec(16 * 2 ** 20, { on: 'import' })
    const vm = vmRef(sim, 'halted')
    const [copy] = await relayVm(src, vm, dst, { stallTimeoutMs: 400 })
    expect(diskHashes(sim, copy!)).toEqual(diskHashes(sim, vm))
  })
})
