import { createReadStream, createWriteStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { describe, expect } from 'vitest'
import { exportVm, importVm, type XapiClient } from '../src/index.js'
import type { Simulator } from '@xapi-ops/xapi-sim'
import {
  diskHashes,
  it,
  progressRecorder,
  srRef,
  taskCount,
  vmNames,
  vmRef,
} from './transfer-fixtures.js'

async function exportToFile(client: XapiClient, vm: string, file: string, opts = {}) {
  const exported = await exportVm(client, vm as never, opts)
  await Promise.all([pipeline(exported.body, createWriteStream(file)), exported.task])
  return (await stat(file)).size
}

/** Exports `vm` and collects the body; resolves with both outcomes. */
async function exportOutcome(client: XapiClient, vm: string, opts = {}) {
  const exported = await exportVm(client, vm as never, opts)
  const body = (async () => {
    let n = 0
    for await (const chunk of exported.body) n += (chunk as Buffer).length
    return n
  })()
  const [bodyResult, taskResult] = await Promise.allSettled([body, exported.task])
  return { body: bodyResult, task: taskResult }
}

function faults(sim: Simulator) {
  return sim.faults.transfer
}

describe('connection dropped', () => {
  it('once during an export: the task error, then a retry works', async ({ sim, src, dst }) => {
    const vm = vmRef(sim, 'halted')
    faults(sim).dropAfterBytes(300_000, { on: 'export' })
    const first = await exportOutcome(src, vm)
    expect(first.task.status).toBe('rejected')
    const error = (first.task as PromiseRejectedResult).reason as Error
    expect(error.name).toBe('XapiError')
    expect(first.body).toMatchObject({ status: 'rejected', reason: error })
    expect(taskCount(sim, 0)).toBe(0)

    const exported = await exportVm(src, vm)
    const [[copy]] = await Promise.all([importVm(dst, exported.body), exported.task])
    expect(diskHashes(sim, copy!)).toEqual(diskHashes(sim, vm))
  })

  it('always during exports: every attempt fails with the task error', async ({ sim, src }) => {
    faults(sim).dropAfterBytes(1_000_000, { on: 'export', always: true })
    for (let i = 0; i < 2; i++) {
      const outcome = await exportOutcome(src, vmRef(sim, 'halted'))
      expect(outcome.task).toMatchObject({ status: 'rejected', reason: { name: 'XapiError' } })
    }
    expect(taskCount(sim, 0)).toBe(0)
  })

  it('once during an import: the task error, nothing left, then a retry works', async ({
    sim,
    src,
    dst,
    dir,
  }) => {
    const file = join(dir, 'vm.xva')
    const length = await exportToFile(src, vmRef(sim, 'halted'), file)
    faults(sim).dropAfterBytes(500_000, { on: 'import' })
    const error = await importVm(dst, createReadStream(file), { length }).catch((e: unknown) => e)
    expect(error).toMatchObject({ name: 'XapiError' })
    expect(vmNames(sim, 1)).toEqual([])
    const [copy] = await importVm(dst, createReadStream(file), { length })
    expect(diskHashes(sim, copy!)).toEqual(diskHashes(sim, vmRef(sim, 'halted')))
    expect(taskCount(sim, 1)).toBe(0)
  })
})

describe('pool to pool, export dropped', () => {
  it('the import fails with the export task error and leaves nothing behind', async ({
    sim,
    src,
    dst,
  }) => {
    faults(sim).dropAfterBytes(2_000_000, { on: 'export' })
    const exported = await exportVm(src, vmRef(sim, 'halted'))
    const [imported, exportTask] = await Promise.allSettled([
      importVm(dst, exported.body),
      exported.task,
    ])
    expect(exportTask).toMatchObject({ status: 'rejected', reason: { name: 'XapiError' } })
    expect(imported).toMatchObject({
      status: 'rejected',
      reason: (exportTask as PromiseRejectedResult).reason,
    })
    await expect.poll(() => vmNames(sim, 1)).toEqual([])
    expect(taskCount(sim, 0) + taskCount(sim, 1)).toBe(0)
  })
})

describe('corrupted block', () => {
  it('is caught in flight: body destroyed and task rejected with the checksum error', async ({
    sim,
    src,
  }) => {
    faults(sim).corruptBlock(0, 0)
    const outcome = await exportOutcome(src, vmRef(sim, 'halted'))
    expect(outcome.task).toMatchObject({
      status: 'rejected',
      reason: { code: 'IMPORT_ERROR', message: expect.stringMatching(/checksum failed/) },
    })
    expect(outcome.body.status).toBe('rejected')
    expect(taskCount(sim, 0)).toBe(0)
  })

  it('without verification, xapi refuses it on import (and accepts it with force)', async ({
    sim,
    src,
    dst,
    dir,
  }) => {
    const file = join(dir, 'bad.xva')
    faults(sim).corruptBlock(0, 0)
    const length = await exportToFile(src, vmRef(sim, 'halted'), file, { verify: false })
    const error = await importVm(dst, createReadStream(file), { length }).catch((e: unknown) => e)
    expect(error).toMatchObject({
      code: 'IMPORT_ERROR',
      message: expect.stringMatching(/checksum failed/),
    })
    expect(vmNames(sim, 1)).toEqual([])
    const forced = await importVm(dst, createReadStream(file), { length, force: true })
    expect(forced).toHaveLength(1)
    expect(vmNames(sim, 1)).toEqual(['halted'])
  })
})

describe('slow and stalled transfers', () => {
  it('throttled: completes, with progress along the way', async ({ sim, src, dst }) => {
    faults(sim).throttleBytesPerSec(4 * 2 ** 20, { on: 'export' })
    const progress = progressRecorder()
    const exported = await exportVm(src, vmRef(sim, 'halted'), { onProgress: progress.onProgress })
    const [vms] = await Promise.all([importVm(dst, exported.body), exported.task])
    expect(vms).toHaveLength(1)
    expect(progress.check()).toEqual([])
    expect(progress.events.length).toBeGreaterThan(3)
    expect(progress.events.some((p) => p.rateBytesPerSec > 0 && p.fraction! < 1)).toBe(true)
  })

  it('stalled export: the watchdog aborts with XAPI_CLIENT_STALLED and cancels the task', async ({
    sim,
    src,
  }) => {
    faults(sim).stallSeconds(20, { afterBytes: 1_000_000, on: 'export' })
    const outcome = await exportOutcome(src, vmRef(sim, 'big'), { stallTimeoutMs: 600 })
    expect(outcome.task).toMatchObject({
      status: 'rejected',
      reason: { code: 'XAPI_CLIENT_STALLED' },
    })
    const { message } = (outcome.task as PromiseRejectedResult).reason as Error
    expect(message).toMatch(
      /^GET http:\/\/127\.0\.0\.1:\d+\/export stalled: no data and no task progress for 600 ms/
    )
    expect(message).not.toContain(await src.sessionRef())
    expect(outcome.body).toMatchObject({
      status: 'rejected',
      reason: { code: 'XAPI_CLIENT_STALLED' },
    })
    expect(sim.calls.some((c) => c.method === 'task.cancel')).toBe(true)
    expect(taskCount(sim, 0)).toBe(0)
  })

  it('task progress counts as life: no bytes for a while is not a stall', async ({ sim, src }) => {
    // Longer than the stall timeout; the task's progress moves every second meanwhile.
    faults(sim).stallSeconds(4, { afterBytes: 1_000_000, on: 'export', keepProgress: true })
    const outcome = await exportOutcome(src, vmRef(sim, 'halted'), { stallTimeoutMs: 3_000 })
    expect(outcome.task.status).toBe('fulfilled')
  })

  it('stalled import: the watchdog aborts and nothing is left behind', async ({
    sim,
    src,
    dst,
    dir,
  }) => {
    const file = join(dir, 'big.xva')
    const length = await exportToFile(src, vmRef(sim, 'big'), file)
    faults(sim).stallSeconds(20, { afterBytes: 1_000_000, on: 'import' })
    const error = await importVm(dst, createReadStream(file), {
      length,
      stallTimeoutMs: 600,
    }).catch((e: unknown) => e)
    expect(error).toMatchObject({ code: 'XAPI_CLIENT_STALLED' })
    await expect.poll(() => vmNames(sim, 1)).toEqual([])
    expect(taskCount(sim, 1)).toBe(0)
  })

  it('a slow import reader is not a stall', async ({ sim, src, dst }) => {
    faults(sim).slowImportReader(4 * 2 ** 20)
    const exported = await exportVm(src, vmRef(sim, 'halted'), { stallTimeoutMs: 2_000 })
    const [vms] = await Promise.all([
      importVm(dst, exported.body, { stallTimeoutMs: 2_000 }),
      exported.task,
    ])
    expect(diskHashes(sim, vms[0]!)).toEqual(diskHashes(sim, vmRef(sim, 'halted')))
  })
})

describe('redirects', () => {
  it('export and import follow a 302 to another pool member', async ({ sim, src, dst }) => {
    faults(sim).redirect({ to: 'src-2', times: 1, on: 'export' })
    faults(sim).redirect({ to: 'dst-2', times: 1, on: 'import' })
    const exported = await exportVm(src, vmRef(sim, 'halted'))
    const [vms] = await Promise.all([importVm(dst, exported.body), exported.task])
    expect(diskHashes(sim, vms[0]!)).toEqual(diskHashes(sim, vmRef(sim, 'halted')))
  })

  it('storage on one host only: both directions land where the SR is', async ({
    sim,
    src,
    dst,
  }) => {
    const vm = vmRef(sim, 'on-local-2')
    const exported = await exportVm(src, vm)
    const [vms] = await Promise.all([
      importVm(dst, exported.body, { sr: srRef(sim, 'dst-local-2') }),
      exported.task,
    ])
    expect(diskHashes(sim, vms[0]!)).toEqual(diskHashes(sim, vm))
  })

  it('gives up after 10 hops', async ({ sim, src }) => {
    faults(sim).redirect({ to: 'src-2', on: 'export' })
    faults(sim).redirect({ to: 'src-1', on: 'export' })
    const error = await exportVm(src, vmRef(sim, 'halted')).catch((e: unknown) => e)
    expect(error).toMatchObject({ code: 'XAPI_CLIENT_TOO_MANY_REDIRECTS' })
    expect((error as Error).message).not.toMatch(/session_id|OpaqueRef/)
    expect(taskCount(sim, 0)).toBe(0)
  })
})
