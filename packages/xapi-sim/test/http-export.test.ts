import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { verifyXva } from '@xapi-ops/xapi-formats'
import { Readable } from 'node:stream'
import { fixture, get, newTask, taskResult } from './http-helpers.js'
import type { Fixture } from './http-helpers.js'

let f: Fixture
beforeAll(async () => {
  f = await fixture()
})
afterAll(() => f.sim.close())

function vdiHashes(vm: string): string[] {
  const pool = f.sim.db.poolOf(vm)!
  return (pool.get(vm)!.VBDs as string[])
    .map((b) => pool.get(b)!.VDI as string)
    .filter((v) => pool.vdiContent.has(v))
    .map((v) => pool.vdiContent.get(v)!.hash())
    .sort()
}

describe('GET /export', () => {
  it('streams a halted VM as xapi does: HTTP/1.0 head, close-delimited XVA that verifies', async () => {
    const vm = f.vm('build-01')
    const r = await get(f.url, `/export?session_id=${f.session}&ref=${vm}`)
    expect(r.statusLine).toBe('HTTP/1.0 200 OK')
    expect(r.headers['connection']).toBe('close')
    expect(r.headers['content-type']).toBe('application/octet-stream')
    expect(r.headers['content-disposition']).toBe('attachment; filename="export.xva"')
    expect(r.headers['content-length']).toBeUndefined()
    expect(r.headers['transfer-encoding']).toBeUndefined()
    const task = r.headers['task-id']!
    expect(task).toMatch(/^OpaqueRef:/)
    const s = await verifyXva(Readable.from([r.body]))
    expect(s.vms[0]!.snapshot.name_label).toBe('build-01')
    expect(s.disks.map((d) => d.hash).sort()).toEqual(vdiHashes(vm))
    const t = await taskResult(f, task)
    expect(t.status).toBe('success')
    expect(t.progress).toBe(1)
    expect(f.sim.db.get(vm)!.current_operations).toEqual({})
  })

  it('by uuid, with zstd and gzip', async () => {
    const vm = f.vm('build-01')
    const uuid = f.sim.db.get(vm)!.uuid as string
    for (const [q, c] of [
      ['zstd', 'zstd'],
      ['true', 'gzip'],
      ['gzip', 'gzip'],
    ] as const) {
      const r = await get(
        f.url,
        `/export?session_id=${f.session}&uuid=${uuid}&use_compression=${q}`
      )
      const s = await verifyXva(Readable.from([r.body]))
      expect(s.compression).toBe(c)
      expect(s.disks.map((d) => d.hash).sort()).toEqual(vdiHashes(vm))
    }
  })

  it('a running VM is 500 and the task fails VM_BAD_POWER_STATE', async () => {
    const vm = f.vm('web-01')
    const task = await newTask(f)
    const r = await get(f.url, `/export?session_id=${f.session}&task_id=${task}&ref=${vm}`)
    expect(r.status).toBe(500)
    expect(r.body.toString()).toContain('VM_BAD_POWER_STATE')
    const t = await taskResult(f, task)
    expect(t.status).toBe('failure')
    expect(t.error_info).toEqual(['VM_BAD_POWER_STATE', vm, 'halted, suspended', 'running'])
  })

  it('preserve_power_state keeps a suspended VM suspended and streams its suspend VDI', async () => {
    const vm = f.vm('cache-01')
    const plain = await verifyXva(
      Readable.from([(await get(f.url, `/export?session_id=${f.session}&ref=${vm}`)).body])
    )
    expect(plain.vms[0]!.snapshot.power_state).toBe('Halted')
    const r = await get(
      f.url,
      `/export?session_id=${f.session}&ref=${vm}&preserve_power_state=true`
    )
    const s = await verifyXva(Readable.from([r.body]))
    expect(s.vms[0]!.snapshot.power_state).toBe('Suspended')
    expect(s.disks.length).toBe(
      plain.disks.length + (f.sim.db.get(vm)!.suspend_VDI !== 'OpaqueRef:NULL' ? 1 : 0)
    )
  })

  it('401 without credentials (task failed), Basic auth works, bad Basic is 401', async () => {
    const vm = f.vm('build-01')
    const task = await newTask(f)
    const r = await get(f.url, `/export?ref=${vm}&task_id=${task}`)
    expect(r.status).toBe(401)
    expect(r.headers['www-authenticate']).toBe('Basic realm="VM.export"')
    expect((await taskResult(f, task)).error_info[0]).toBe('SESSION_AUTHENTICATION_FAILED')
    const basic = Buffer.from(`${f.sim.user}:${f.sim.password}`).toString('base64')
    const okr = await get(f.url, `/export?ref=${vm}`, `Authorization: Basic ${basic}\r\n`)
    expect(okr.status).toBe(200)
    await verifyXva(Readable.from([okr.body]))
    const bad = Buffer.from(`${f.sim.user}:nope`).toString('base64')
    expect((await get(f.url, `/export?ref=${vm}`, `Authorization: Basic ${bad}\r\n`)).status).toBe(
      401
    )
    const cookie = await get(f.url, `/export?ref=${vm}`, `Cookie: session_id=${f.session}\r\n`)
    expect(cookie.status).toBe(200)
    expect((await get(f.url, `/export?ref=${vm}&session_id=OpaqueRef:bogus`)).status).toBe(401)
  })

  it('GET /export_metadata: Content-Length, ova.xml only', async () => {
    const vm = f.vm('web-01')
    const r = await get(f.url, `/export_metadata?session_id=${f.session}&ref=${vm}`)
    expect(r.statusLine).toBe('HTTP/1.0 200 OK')
    expect(Number(r.headers['content-length'])).toBe(r.body.length)
    const s = await verifyXva(Readable.from([r.body]), { metadataOnly: true })
    expect(s.vms[0]!.snapshot.power_state).toBe('Running')
    expect(s.disks).toEqual([])
    expect((await taskResult(f, r.headers['task-id']!)).status).toBe('success')
  })

  it('export_metadata: snapshots included unless export_snapshots=false; excluded_device_types', async () => {
    const vm = f.vm('web-01')
    const q = `/export_metadata?session_id=${f.session}&ref=${vm}`
    const meta = async (extra: string) =>
      verifyXva(Readable.from([(await get(f.url, q + extra)).body]), { metadataOnly: true })
    const all = await meta('')
    expect(all.vms.map((v) => [v.snapshot.name_label, v.snapshot.is_a_snapshot])).toEqual([
      ['web-01', false],
      ['web-01 before upgrade', true],
    ])
    expect((await meta('&export_snapshots=false')).vms).toHaveLength(1)
    const noVif = await meta('&excluded_device_types=vif')
    expect(noVif.header.objects.some((o) => o.class === 'VIF')).toBe(false)
    expect(all.header.objects.some((o) => o.class === 'VIF')).toBe(true)
    expect((await get(f.url, q + '&excluded_device_types=floppy')).status).toBe(500)
  })

  it('unknown paths are 404', async () => {
    expect((await get(f.url, `/nothing?session_id=${f.session}`)).status).toBe(404)
  })
})
