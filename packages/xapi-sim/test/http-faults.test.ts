import http from 'node:http'
import { Readable } from 'node:stream'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { verifyXva } from '@xapi-ops/xapi-formats'
import { startSimulator } from '../src/index.js'
import { login, ok, waitTask } from './rpc.js'
import { fixture, get, raw, taskResult } from './http-helpers.js'
import type { Fixture } from './http-helpers.js'

let f: Fixture
beforeAll(async () => {
  f = await fixture()
})
afterEach(() => f.sim.faults.clear())
afterAll(() => f.sim.close())

/** A streaming GET: calls `during` once the first body bytes arrived, then reads to the end. */
function streamGet(
  path: string,
  during: (task: string) => Promise<void>
): Promise<{ body: Buffer; task: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(f.url + path, { agent: false }, (res) => {
      const task = res.headers['task-id'] as string
      const chunks: Buffer[] = []
      let started: Promise<void> | undefined
      res.on('data', (c: Buffer) => {
        chunks.push(c)
        started ??= during(task)
      })
      const finish = () =>
        void (started ?? Promise.resolve()).then(
          () => resolve({ body: Buffer.concat(chunks), task }),
          reject
        )
      res.on('end', finish)
      res.on('error', finish)
      res.on('aborted', finish)
    })
    req.on('error', reject)
  })
}

const exportPath = (vm: string, extra = '') => `/export?session_id=${f.session}&ref=${vm}${extra}`

describe('transfer faults', () => {
  it('dropAfterBytes: the body stops after exactly n bytes, the task fails; the next export is whole', async () => {
    const vm = f.vm('build-01')
    f.sim.faults.transfer.dropAfterBytes(300_000, { on: 'export' })
    const r = await get(f.url, exportPath(vm))
    expect(r.body.length).toBe(300_000)
    await expect(verifyXva(Readable.from([r.body]))).rejects.toMatchObject({
      code: 'IMPORT_ERROR_PREMATURE_EOF',
    })
    expect((await taskResult(f, r.headers['task-id']!)).status).toBe('failure')
    const again = await get(f.url, exportPath(vm))
    await verifyXva(Readable.from([again.body]))
  })

  it('throttled export: VM shows `export` in current_operations and progress moves while streaming', async () => {
    const vm = f.vm('build-01')
    f.sim.faults.transfer.throttleBytesPerSec(8 * 2 ** 20, { on: 'export' })
    const seen: { ops: string[]; progress: number }[] = []
    const { body, task } = await streamGet(exportPath(vm), async (t) => {
      seen.push({
        ops: Object.values(f.sim.db.get(vm)!.current_operations),
        progress: f.sim.db.get(t)!.progress,
      })
    })
    await verifyXva(Readable.from([body]))
    expect(seen[0]!.ops).toEqual(['export'])
    expect(seen[0]!.progress).toBeLessThan(1)
    expect((await taskResult(f, task)).status).toBe('success')
    expect(f.sim.db.get(vm)!.current_operations).toEqual({})
  })

  it('task.cancel during an export: the task is cancelled and the connection closed', async () => {
    const vm = f.vm('build-01')
    f.sim.faults.transfer.throttleBytesPerSec(2 * 2 ** 20, { on: 'export' })
    const { body, task } = await streamGet(exportPath(vm), (t) =>
      ok(f.url, 'task.cancel', f.session, t)
    )
    await expect(verifyXva(Readable.from([body]))).rejects.toMatchObject({
      code: 'IMPORT_ERROR_PREMATURE_EOF',
    })
    const t = await taskResult(f, task)
    expect(t.status).toBe('cancelled')
    expect(t.error_info).toEqual([]) // as xapi's TaskHelper.cancel
    expect(f.sim.db.get(vm)!.current_operations).toEqual({})
  })

  it('stallSeconds: nothing is sent for that long after the given byte count, then the rest', async () => {
    const vm = f.vm('build-01')
    f.sim.faults.transfer.stallSeconds(2, { afterBytes: 100_000, on: 'export' })
    const gaps: { at: number; ms: number }[] = []
    let last = Date.now()
    let bytes = 0
    await new Promise<void>((resolve, reject) => {
      http
        .get(f.url + exportPath(vm), { agent: false }, (res) => {
          res.on('data', (c: Buffer) => {
            const now = Date.now()
            gaps.push({ at: bytes, ms: now - last })
            last = now
            bytes += c.length
          })
          res.on('end', resolve)
        })
        .on('error', reject)
    })
    // the stall is a lower bound: the longest silence starts exactly at the given byte count
    const longest = gaps.reduce((a, b) => (b.ms > a.ms ? b : a))
    expect(longest.at).toBe(100_000)
    expect(longest.ms).toBeGreaterThanOrEqual(1900)
  })

  it('redirect: 302 to the other host with the same path and query, which serves it', async () => {
    const pool = f.sim.pools[0]!
    expect(pool.hosts.length).toBeGreaterThan(1)
    const other = pool.hosts[1]!
    f.sim.faults.redirectTransfers({ to: other.name, times: 1 })
    const path = exportPath(f.vm('build-01'))
    const r = await get(f.url, path)
    expect(r.status).toBe(302)
    expect(r.headers['location']).toBe(other.url + path)
    const there = await get(other.url, path)
    expect(there.status).toBe(200)
    await verifyXva(Readable.from([there.body]))
    expect((await get(f.url, path)).status).toBe(200)
  })

  it('import: a drop is IMPORT_ERROR_PREMATURE_EOF; a slow reader still imports', async () => {
    const xva = (await get(f.url, exportPath(f.vm('build-01')))).body
    const before = f.sim.db.filter('VM').length
    const put = () =>
      raw(
        f.url,
        `PUT /import?session_id=${f.session} HTTP/1.1\r\nHost: sim\r\nContent-Length: ${xva.length}\r\n\r\n`,
        {
          body: xva,
        }
      )
    f.sim.faults.transfer.dropAfterBytes(200_000, { on: 'import' })
    const dropped = await put()
    expect((await taskResult(f, dropped.headers['task-id']!)).error_info).toEqual([
      'IMPORT_ERROR_PREMATURE_EOF',
    ])
    expect(f.sim.db.filter('VM').length).toBe(before)
    f.sim.faults.transfer.slowImportReader(16 * 2 ** 20)
    const slow = await put()
    expect((await taskResult(f, slow.headers['task-id']!)).status).toBe('success')
    expect(f.sim.db.filter('VM').length).toBe(before + 1)
  })

  it('task.cancel while the client does not read: the task ends cancelled, the connection closes', async () => {
    const seed = {
      pools: [
        {
          name: 'p',
          hosts: [{ name: 'h' }],
          srs: [{ name: 's', type: 'nfs', shared: true, default: true, sizeGiB: 100 }],
          networks: [{ name: 'n' }],
          vms: [{ name: 'big', powerState: 'Halted', disks: [{ sizeMiB: 512, allocated: 1 }] }],
        },
      ],
    }
    await using sim = await startSimulator({ seed: seed as never, timeScale: 0.001 })
    const url = sim.pools[0]!.masterUrl
    const session = await login(url, sim.user, sim.password)
    const vm = sim.db.find('VM', (r) => r.name_label === 'big')![0]
    const { res, task } = await new Promise<{ res: http.IncomingMessage; task: string }>(
      (resolve, reject) => {
        http
          .get(`${url}/export?session_id=${session}&ref=${vm}`, { agent: false }, (res) => {
            res.pause() // never read: the server blocks on a full socket
            resolve({ res, task: res.headers['task-id'] as string })
          })
          .on('error', reject)
      }
    )
    await new Promise((r) => setTimeout(r, 300))
    await ok(url, 'task.cancel', session, task)
    const t = await waitTask(url, session, task)
    expect(t.status).toBe('cancelled')
    expect(sim.db.get(vm)!.current_operations).toEqual({})
    res.resume()
    await new Promise((resolve) => res.socket.once('close', resolve))
  })
})
