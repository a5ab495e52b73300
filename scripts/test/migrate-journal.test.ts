import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { HostSlots } from '../src/ops/migrate/host-slots.js'
import { Journal } from '../src/ops/migrate/journal.js'

const pools = { source: 'pool-a-uuid', destination: 'pool-b-uuid' }
let dir: string
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'migrate-journal-'))
})
afterEach(async () => {
  await rm(dir, { recursive: true, force: true })
})

describe('Journal', () => {
  it('writes every change atomically and reads it back', async () => {
    const file = join(dir, 'j.json')
    const journal = await Journal.open(file, pools)
    await Promise.all([
      journal.update('vm-1', { name: 'web', step: 'planned', wasRunning: true }),
      journal.update('vm-1', { step: 'copying', method: 'stream' }),
      journal.update('vm-2', { name: 'db' }),
    ])
    expect(await readdir(dir)).toEqual(['j.json'])
    const again = await Journal.open(file, pools)
    expect(again.get('vm-1')).toMatchObject({
      uuid: 'vm-1',
      name: 'web',
      step: 'copying',
      method: 'stream',
      status: 'in_progress',
      wasRunning: true,
      shutDownByUs: false,
    })
    expect(again.entries().map((e) => e.uuid)).toEqual(['vm-1', 'vm-2'])
  })

  it('keeps an error only while the status is failed', async () => {
    const journal = await Journal.open(join(dir, 'j.json'), pools)
    await journal.update('vm-1', { status: 'failed', error: 'boom' })
    expect(journal.get('vm-1')?.error).toBe('boom')
    await journal.update('vm-1', { status: 'in_progress' })
    expect(journal.get('vm-1')?.error).toBeUndefined()
  })

  it('refuses a journal of other pools, or a file that is not a journal', async () => {
    const file = join(dir, 'j.json')
    await (await Journal.open(file, pools)).update('vm-1', { name: 'web' })
    await expect(
      Journal.open(file, { source: 'pool-a-uuid', destination: 'other' })
    ).rejects.toThrow(/belongs to a migration from pool pool-a-uuid to pool-b-uuid/)
    await writeFile(file, '{"hello":1}')
    await expect(Journal.open(file, pools)).rejects.toThrow(/not a vm-migrate journal/)
    await writeFile(file, 'garbage')
    await expect(Journal.open(file, pools)).rejects.toThrow(/not valid JSON/)
  })

  it('keeps the import tasks of an entry, and refuses a malformed list', async () => {
    const file = join(dir, 'j.json')
    await (await Journal.open(file, pools)).update('vm-1', { importTasks: ['OpaqueRef:t1'] })
    expect((await Journal.open(file, pools)).get('vm-1')?.importTasks).toEqual(['OpaqueRef:t1'])
    const saved = JSON.parse(await readFile(file, 'utf8'))
    saved.vms['vm-1'].importTasks = 'OpaqueRef:t1'
    await writeFile(file, JSON.stringify(saved))
    await expect(Journal.open(file, pools)).rejects.toThrow(/bad entry for VM vm-1/)
  })

  it('without a file, keeps entries in memory only', async () => {
    const journal = await Journal.open(undefined, pools)
    await journal.update('vm-1', { name: 'web', status: 'done' })
    expect(journal.get('vm-1')?.status).toBe('done')
    expect(await readdir(dir)).toEqual([])
  })

  it('is readable JSON at every moment (no partial file)', async () => {
    const file = join(dir, 'j.json')
    const journal = await Journal.open(file, pools)
    const writes = Array.from({ length: 20 }, (_, i) =>
      journal.update(`vm-${i}`, { name: `n${i}` })
    )
    await writes[0]
    JSON.parse(await readFile(file, 'utf8'))
    await Promise.all(writes)
    expect(Object.keys(JSON.parse(await readFile(file, 'utf8')).vms)).toHaveLength(20)
  })
})

describe('HostSlots', () => {
  it('allows at most `limit` holders per host and wakes waiters on release', async () => {
    const slots = new HostSlots(2)
    const a = await slots.acquire(['h1', 'h2'])
    const b = await slots.acquire(['h1'])
    let third = false
    const pending = slots.acquire(['h1', 'h3']).then((release) => {
      third = true
      return release
    })
    await new Promise((resolve) => setImmediate(resolve))
    expect(third).toBe(false)
    expect(slots.used('h1')).toBe(2)
    b()
    const c = await pending
    expect(third).toBe(true)
    expect(slots.used('h3')).toBe(1)
    a()
    c()
    expect([slots.used('h1'), slots.used('h2'), slots.used('h3')]).toEqual([0, 0, 0])
  })

  it('rejects a waiter whose signal aborts', async () => {
    const slots = new HostSlots(1)
    await slots.acquire(['h1'])
    const controller = new AbortController()
    const waiting = slots.acquire(['h1'], controller.signal)
    controller.abort(new Error('stop'))
    await expect(waiting).rejects.toThrow('stop')
  })
})
