import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { gzipSync } from 'node:zlib'
import { fixture, get, newTask, raw, taskResult } from './http-helpers.js'
import type { Fixture } from './http-helpers.js'

let f: Fixture
let xva: Buffer
beforeAll(async () => {
  f = await fixture()
  xva = (await get(f.url, `/export?session_id=${f.session}&ref=${f.vm('build-01')}`)).body
})
afterAll(() => f.sim.close())

function hashes(vm: string): string[] {
  const pool = f.sim.db.poolOf(vm)!
  return (pool.get(vm)!.VBDs as string[])
    .map((b) => pool.get(b)!.VDI as string)
    .filter((v) => pool.vdiContent.has(v))
    .map((v) => pool.vdiContent.get(v)!.hash())
    .sort()
}

function vmCount(): number {
  return f.sim.db.filter('VM').length
}

const resultRefs = (result: string): string[] =>
  [...result.matchAll(/OpaqueRef:[0-9a-f-]+/g)].map((m) => m[0])

describe('PUT /import', () => {
  it('with Content-Length: 200 + task-id before the body, then a VM with the same disks', async () => {
    const r = await raw(
      f.url,
      `PUT /import?session_id=${f.session} HTTP/1.1\r\nHost: sim\r\nContent-Length: ${xva.length}\r\n\r\n`,
      { body: xva }
    )
    expect(r.statusLine).toBe('HTTP/1.1 200 OK')
    expect(r.head).toMatch(/\r\ntask-id:OpaqueRef:/)
    const t = await taskResult(f, r.headers['task-id']!)
    expect(t.status).toBe('success')
    const [vm] = resultRefs(t.result as string)
    expect(t.result).toBe(`<value><array><data><value>${vm}</value></data></array></value>`)
    expect(f.sim.db.get(vm!)!.name_label).toBe('build-01')
    expect(f.sim.db.get(vm!)!.power_state).toBe('Halted')
    expect(hashes(vm!)).toEqual(hashes(f.vm('build-01')))
  })

  const put = (
    query: string,
    headers: string,
    body: Buffer,
    opts: { http10?: boolean; end?: boolean } = {}
  ) =>
    raw(
      f.url,
      `PUT /import?session_id=${f.session}${query} HTTP/1.${opts.http10 ? 0 : 1}\r\nHost: sim\r\n${headers}\r\n`,
      {
        body,
        end: opts.end ?? false,
      }
    )

  it('close-delimited (no length, EOF ends the archive) and compressed bodies', async () => {
    const before = vmCount()
    for (const body of [xva, gzipSync(xva)]) {
      const r = await put('', '', body, { http10: true, end: true })
      expect(r.status).toBe(200)
      const t = await taskResult(f, r.headers['task-id']!)
      expect(t.status).toBe('success')
      expect(hashes(resultRefs(t.result as string)[0]!)).toEqual(hashes(f.vm('build-01')))
    }
    expect(vmCount()).toBe(before + 2)
  })

  it('any Transfer-Encoding is 403 and the task fails IMPORT_ERROR_CANNOT_HANDLE_CHUNKED', async () => {
    const task = await newTask(f)
    const r = await raw(
      f.url,
      `PUT /import?session_id=${f.session}&task_id=${task} HTTP/1.1\r\nHost: sim\r\nTransfer-Encoding: chunked\r\n\r\n`,
      { body: Buffer.from('0\r\n\r\n'), eager: true }
    )
    expect(r.status).toBe(403)
    const t = await taskResult(f, task)
    expect(t.error_info).toEqual(['IMPORT_ERROR_CANNOT_HANDLE_CHUNKED'])
  })

  it('without sr_id and no default SR: 500 and DEFAULT_SR_NOT_FOUND; sr_uuid selects the SR', async () => {
    const pool = f.sim.db.pools.values().next().value!
    const poolRef = [...pool.all('pool').keys()][0]!
    const sr = pool.get(poolRef)!.default_SR as string
    pool.update(poolRef, { default_SR: 'OpaqueRef:NULL' })
    try {
      const task = await newTask(f)
      const r = await put(`&task_id=${task}`, `Content-Length: ${xva.length}\r\n`, xva)
      expect(r.status).toBe(500)
      expect((await taskResult(f, task)).error_info).toEqual([
        'DEFAULT_SR_NOT_FOUND',
        'OpaqueRef:NULL',
      ])
      const ok = await put(
        `&sr_uuid=${pool.get(sr)!.uuid}`,
        `Content-Length: ${xva.length}\r\n`,
        xva
      )
      const t = await taskResult(f, ok.headers['task-id']!)
      const vm = resultRefs(t.result as string)[0]!
      const vdi = pool.get(
        pool
          .get(vm)!
          .VBDs.map((b: string) => pool.get(b))
          .find((b: any) => b.type === 'Disk').VDI
      )!
      expect(vdi.SR).toBe(sr)
    } finally {
      pool.update(poolRef, { default_SR: sr })
    }
  })

  it('a corrupt block: IMPORT_ERROR naming it and nothing left; with force the VM stays', async () => {
    f.sim.faults.transfer.corruptBlock(0, 0, { times: 1 })
    const bad = (await get(f.url, `/export?session_id=${f.session}&ref=${f.vm('build-01')}`)).body
    const before = vmCount()
    const vdis = f.sim.db.filter('VDI').length
    const r = await put('', `Content-Length: ${bad.length}\r\n`, bad)
    const t = await taskResult(f, r.headers['task-id']!)
    expect(t.status).toBe('failure')
    expect(t.error_info[0]).toBe('IMPORT_ERROR')
    expect(t.error_info[1]).toMatch(/^Block Ref:\d+\/00000000 checksum failed: original = /)
    expect(vmCount()).toBe(before)
    expect(f.sim.db.filter('VDI').length).toBe(vdis)
    const forced = await put('&force=true', `Content-Length: ${bad.length}\r\n`, bad)
    expect((await taskResult(f, forced.headers['task-id']!)).status).toBe('success')
    expect(vmCount()).toBe(before + 1)
  })

  it('a truncated body: IMPORT_ERROR_PREMATURE_EOF, created objects removed', async () => {
    const before = vmCount()
    const cut = xva.subarray(0, xva.length >> 1)
    const r = await put('', '', cut, { http10: true, end: true })
    const t = await taskResult(f, r.headers['task-id']!)
    expect(t.error_info).toEqual(['IMPORT_ERROR_PREMATURE_EOF'])
    expect(vmCount()).toBe(before)
    const wrong = await put('', '', Buffer.from('not an archive at all '.repeat(100)), {
      http10: true,
      end: true,
    })
    expect((await taskResult(f, wrong.headers['task-id']!)).error_info[0]).toBe('IMPORT_ERROR')
  })

  it('401 without credentials; Basic auth works', async () => {
    const r = await raw(
      f.url,
      `PUT /import HTTP/1.1\r\nHost: sim\r\nContent-Length: ${xva.length}\r\n\r\n`,
      {
        body: xva,
      }
    )
    expect(r.status).toBe(401)
    expect(r.headers['www-authenticate']).toBe('Basic realm="VM.import"')
    const basic = Buffer.from(`${f.sim.user}:${f.sim.password}`).toString('base64')
    const ok = await raw(
      f.url,
      `PUT /import HTTP/1.1\r\nHost: sim\r\nAuthorization: Basic ${basic}\r\nContent-Length: ${xva.length}\r\n\r\n`,
      { body: xva }
    )
    expect((await taskResult(f, ok.headers['task-id']!)).status).toBe('success')
  })

  it('PUT /import_metadata: a VM sharing the existing disks; dry_run creates nothing', async () => {
    const src = f.vm('build-01')
    const meta = (await get(f.url, `/export_metadata?session_id=${f.session}&ref=${src}`)).body
    const before = vmCount()
    const dry = await raw(
      f.url,
      `PUT /import_metadata?session_id=${f.session}&dry_run=true HTTP/1.1\r\nHost: sim\r\nContent-Length: ${meta.length}\r\n\r\n`,
      { body: meta }
    )
    expect((await taskResult(f, dry.headers['task-id']!)).result).toBe(
      '<value><array><data></data></array></value>'
    )
    expect(vmCount()).toBe(before)
    const r = await raw(
      f.url,
      `PUT /import_metadata?session_id=${f.session} HTTP/1.1\r\nHost: sim\r\nContent-Length: ${meta.length}\r\n\r\n`,
      { body: meta }
    )
    const t = await taskResult(f, r.headers['task-id']!)
    expect(t.status).toBe('success')
    const vm = resultRefs(t.result as string)[0]!
    expect(vm).not.toBe(src)
    expect(hashes(vm)).toEqual(hashes(src))
  })

  it('a host that cannot see the SR answers 302 to one that can (before reading the body)', async () => {
    const [a1, a2] = f.sim.pools[0]!.hosts
    const local = f.sim.db.find('SR', (r) => r.name_label === `Local storage ${a1!.name}`)![0]
    const path = `/import?session_id=${f.session}&sr_id=${local}`
    const r = await raw(
      a2!.url,
      `PUT ${path} HTTP/1.1\r\nHost: sim\r\nContent-Length: ${xva.length}\r\n\r\n`,
      {
        body: xva,
      }
    )
    expect(r.status).toBe(302)
    expect(r.headers['location']).toBe(a1!.url + path)
    const there = await raw(
      a1!.url,
      `PUT ${path} HTTP/1.1\r\nHost: sim\r\nContent-Length: ${xva.length}\r\n\r\n`,
      {
        body: xva,
      }
    )
    expect((await taskResult(f, there.headers['task-id']!)).status).toBe('success')
  })

  it('import_metadata of a VM with a snapshot: the VM is the result, its snapshot linked to it', async () => {
    const meta = (
      await get(f.url, `/export_metadata?session_id=${f.session}&ref=${f.vm('web-01')}`)
    ).body
    const r = await raw(
      f.url,
      `PUT /import_metadata?session_id=${f.session} HTTP/1.1\r\nHost: sim\r\nContent-Length: ${meta.length}\r\n\r\n`,
      { body: meta }
    )
    const t = await taskResult(f, r.headers['task-id']!)
    const refs = resultRefs(t.result as string)
    expect(refs).toHaveLength(1)
    const vm = f.sim.db.get(refs[0]!)!
    expect(vm.is_a_snapshot).toBe(false)
    expect(vm.snapshots).toHaveLength(1)
    const snap = f.sim.db.get(vm.snapshots[0])!
    expect([snap.name_label, snap.is_a_snapshot, snap.snapshot_of]).toEqual([
      'web-01 before upgrade',
      true,
      refs[0],
    ])
  })

  it('restore=true keeps the uuid and replaces a halted VM only with a newer version (or force)', async () => {
    const src = f.vm('build-01')
    const uuid = f.sim.db.get(src)!.uuid as string
    const restore = async (query: string) => {
      const r = await put(`&restore=true${query}`, `Content-Length: ${xva.length}\r\n`, xva)
      return taskResult(f, r.headers['task-id']!)
    }
    const same = await restore('')
    expect(same.error_info[0]).toBe('VM_TO_IMPORT_IS_NOT_NEWER_VERSION')
    expect(f.sim.db.get(src)).toBeDefined()
    const forced = await restore('&force=true')
    expect(forced.status).toBe('success')
    const vm = resultRefs(forced.result as string)[0]!
    expect(f.sim.db.get(src)).toBeUndefined()
    expect(f.sim.db.get(vm)!.uuid).toBe(uuid)
    expect(hashes(vm)).toEqual(hashes(f.vm('build-01')))
  })

  it('a VIF whose network has no match by name or bridge gets a network the import makes', async () => {
    const pool = f.sim.db.poolOf(f.vm('build-01'))!
    const vif = (pool.get(f.vm('build-01'))!.VIFs as string[])[0]!
    const netRef = pool.get(vif)!.network as string
    const { name_label: name, bridge } = pool.get(netRef)!
    pool.update(netRef, { name_label: 'renamed', bridge: 'xenbr99' })
    try {
      const networks = () => pool.all('network').size
      const before = networks()
      // A failed import removes the network it made.
      const cut = await put('', '', xva.subarray(0, xva.length >> 1), { http10: true, end: true })
      expect((await taskResult(f, cut.headers['task-id']!)).status).toBe('failure')
      expect(networks()).toBe(before)
      const r = await put('', `Content-Length: ${xva.length}\r\n`, xva)
      const t = await taskResult(f, r.headers['task-id']!)
      const vm = resultRefs(t.result as string)[0]!
      const made = pool.get(pool.get((pool.get(vm)!.VIFs as string[])[0]!)!.network as string)!
      expect(made).toMatchObject({ name_label: name, bridge })
      expect(made.other_config).toEqual({ import_task: r.headers['task-id'] })
      expect(networks()).toBe(before + 1)
    } finally {
      pool.update(netRef, { name_label: name, bridge })
    }
  })
})
