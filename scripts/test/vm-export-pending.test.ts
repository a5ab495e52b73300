import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { hostname, tmpdir } from 'node:os'
import { join } from 'node:path'
import type { XapiClient } from '@xapi-ops/xapi'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { PendingStore } from '../src/ops/vm-export/pending.js'
import { recoverPending } from '../src/ops/vm-export/recover-pending.js'

let dir: string
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vm-export-pending-'))
})
afterEach(async () => {
  await rm(dir, { recursive: true, force: true })
})

describe('PendingStore', () => {
  it('records each change before it is made and removes the file once all are undone', async () => {
    const store = new PendingStore(dir, 'pool-uuid')
    await Promise.all([
      store.set({ vm: 'vm-1', name: 'web', action: 'snapshot' }),
      store.set({ vm: 'vm-2', name: 'db', action: 'offline', host: 'OpaqueRef:h', paused: false }),
      store.set({
        vm: 'vm-1',
        name: 'web',
        action: 'snapshot',
        snapshot: { ref: 'OpaqueRef:s', uuid: 'snap-uuid' },
      }),
    ])
    expect(await readdir(dir)).toEqual([`.vm-export-pending-${process.pid}.json`])
    const saved = JSON.parse(await readFile(store.file, 'utf8'))
    expect(saved).toMatchObject({ version: 1, pid: process.pid, pool: 'pool-uuid' })
    expect(saved.entries['vm-1']).toMatchObject({ snapshot: { uuid: 'snap-uuid' } })
    expect(saved.entries['vm-2']).toMatchObject({ action: 'offline', host: 'OpaqueRef:h' })
    await store.delete('vm-1')
    expect(Object.keys(JSON.parse(await readFile(store.file, 'utf8')).entries)).toEqual(['vm-2'])
    await store.delete('vm-2')
    expect(await readdir(dir)).toEqual([])
  })
})

describe('recoverPending', () => {
  // Files it must not act on: the client is never called.
  const client = {} as XapiClient
  const hooks = () => {
    const warnings: string[] = []
    return { warnings, dryRun: false, emit: () => {}, warn: (m: string) => warnings.push(m) }
  }
  const pendingFile = (over: object) =>
    JSON.stringify({
      version: 1,
      pid: process.pid,
      hostname: hostname(),
      pool: 'pool-uuid',
      entries: { 'vm-1': { vm: 'vm-1', name: 'web', action: 'offline', since: '' } },
      ...over,
    })

  it('leaves the file of a live process, another pool or another machine alone', async () => {
    await writeFile(join(dir, '.vm-export-pending-1.json'), pendingFile({ pid: process.pid }))
    await writeFile(join(dir, '.vm-export-pending-2.json'), pendingFile({ pool: 'other' }))
    await writeFile(join(dir, '.vm-export-pending-3.json'), pendingFile({ hostname: 'elsewhere' }))
    await writeFile(join(dir, '.vm-export-pending-4.json'), '{ not json')
    const h = hooks()
    expect(await recoverPending(client, dir, 'pool-uuid', h)).toBe(0)
    expect(h.warnings).toEqual([
      expect.stringMatching(/left by a run on elsewhere .*not undone here/),
      expect.stringMatching(/pending-4\.json: unreadable/),
    ])
    expect((await readdir(dir)).sort()).toHaveLength(4)
  })

  it('a missing --out directory is nothing to recover', async () => {
    expect(await recoverPending(client, join(dir, 'nope'), 'pool-uuid', hooks())).toBe(0)
  })
})
