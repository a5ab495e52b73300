import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect } from 'vitest'
import {
  exportVmToFile,
  importVm,
  relayVm,
  type TransferClient,
  type XapiClient,
} from '../src/index.js'
import { diskHashes, it, taskCount, vmNames, vmRef } from './transfer-fixtures.js'

/** Logs a session out behind the client's back, as an idle timeout or the session limit would. */
async function logoutBehind(client: XapiClient): Promise<void> {
  const ref = await client.sessionRef()
  const res = await fetch(new URL('/jsonrpc', client.hostUrl()), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'session.logout', params: [ref] }),
  })
  await res.arrayBuffer()
}

/**
 * `client`, whose session dies right after each of the next `times` task.create: the transfer's
 * request then carries a session xapi no longer knows (401, the task failed with
 * SESSION_AUTHENTICATION_FAILED).
 */
function dyingSession(client: XapiClient, times: number): TransferClient & { tasks: number } {
  const wrapped = {
    tasks: 0,
    sessionRef: (signal?: AbortSignal) => client.sessionRef(signal),
    hostUrl: () => client.hostUrl(),
    agentFor: (url: URL) => client.agentFor(url),
    call: (method: string, ...params: unknown[]) => client.call(method, ...params),
    async createTask(label: string, description?: string) {
      const task = await client.createTask(label, description)
      wrapped.tasks++
      if (times-- > 0) await logoutBehind(client)
      return task
    },
  }
  return wrapped
}

describe('a session xapi refuses between task.create and the request', () => {
  it('exportVmToFile logs in again and exports once more', async ({ sim, src, dir, signal }) => {
    const client = dyingSession(src, 1)
    const vm = vmRef(sim, 'halted')
    const file = join(dir, 'x.xva')
    const written = await exportVmToFile(client, vm, file, { sha256: true, signal })
    expect(written.bytes).toBe((await stat(file)).size)
    expect(client.tasks).toBe(2)
    expect(taskCount(sim, 0)).toBe(0)
  })

  it('importVm logs in again and uploads once more', async ({ sim, src, dst, dir, signal }) => {
    const vm = vmRef(sim, 'halted')
    const file = join(dir, 'x.xva')
    const { bytes } = await exportVmToFile(src, vm, file, { signal })
    const before = vmNames(sim, 1).length
    const client = dyingSession(dst, 1)
    const [copy] = await importVm(client, createReadStream(file), { length: bytes, signal })
    expect(diskHashes(sim, copy!)).toEqual(diskHashes(sim, vm))
    expect(client.tasks).toBe(2)
    expect(vmNames(sim, 1)).toHaveLength(before + 1)
    expect(taskCount(sim, 1)).toBe(0)
  })

  it('relayVm: either side logs in again', async ({ sim, src, dst, signal }) => {
    const vm = vmRef(sim, 'halted')
    const source = dyingSession(src, 1)
    const target = dyingSession(dst, 1)
    const [copy] = await relayVm(source, vm, target, { signal })
    expect(diskHashes(sim, copy!)).toEqual(diskHashes(sim, vm))
    expect([source.tasks, target.tasks]).toEqual([2, 2])
    expect([taskCount(sim, 0), taskCount(sim, 1)]).toEqual([0, 0])
  })

  it('refused twice: the error, nothing left behind', async ({ sim, src, dir, signal }) => {
    const client = dyingSession(src, 2)
    await expect(
      exportVmToFile(client, vmRef(sim, 'halted'), join(dir, 'x.xva'), { signal })
    ).rejects.toMatchObject({ code: 'SESSION_AUTHENTICATION_FAILED' })
    expect(client.tasks).toBe(2)
    expect(taskCount(sim, 0)).toBe(0)
  })
})
