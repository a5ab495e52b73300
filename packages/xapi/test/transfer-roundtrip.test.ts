import { createReadStream, createWriteStream } from 'node:fs'
import { readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect } from 'vitest'
import { exportVm, importVm, verifyXva, type Ref, type TransferProgress } from '../src/index.js'
import {
  MiB,
  startLocalPool,
  startTlsPools,
  diskHashes,
  it,
  progressRecorder,
  srRef,
  taskCount,
  vmNames,
  vmRef,
} from './transfer-fixtures.js'

describe('export → file → import', () => {
  for (const compression of ['none', 'gzip', 'zstd'] as const) {
    it(`keeps the disk contents (${compression})`, async ({ sim, src, dst, dir, signal }) => {
      const vm = vmRef(sim, 'halted')
      const file = join(dir, `vm.xva`)
      const exportProgress = progressRecorder()
      const exported = await exportVm(src, vm, {
        compression,
        signal,
        onProgress: exportProgress.onProgress,
      })
      await Promise.all([
        pipeline(exported.body, createWriteStream(file), { signal }),
        exported.task,
      ])

      const bytes = await readFile(file)
      const magic = bytes.subarray(0, 4).toString('hex')
      expect(magic.startsWith('1f8b')).toBe(compression === 'gzip')
      expect(magic).toBe(compression === 'zstd' ? '28b52ffd' : magic)
      const summary = await verifyXva(createReadStream(file))
      expect(summary.compression).toBe(compression)

      const importProgress = progressRecorder()
      const { size } = await stat(file)
      const vms = await importVm(dst, createReadStream(file), {
        length: size,
        signal,
        onProgress: importProgress.onProgress,
      })
      expect(vms).toHaveLength(1)
      expect(diskHashes(sim, vms[0]!)).toEqual(diskHashes(sim, vm))
      expect(diskHashes(sim, vm)).toHaveLength(2)

      expect.soft(exportProgress.check()).toEqual([])
      expect.soft(importProgress.check()).toEqual([])
      expect.soft(exportProgress.events.at(-1)?.bytes).toBe(size)
      expect.soft(importProgress.events.at(-1)).toMatchObject({ bytes: size, totalBytes: size })
      expect.soft(taskCount(sim, 0)).toBe(0)
      expect.soft(taskCount(sim, 1)).toBe(0)
    })
  }

  it('imports a close-delimited body (no length) into a chosen SR', async ({
    sim,
    src,
    dst,
    dir,
    signal,
  }) => {
    const vm = vmRef(sim, 'halted')
    const file = join(dir, 'vm.xva')
    const exported = await exportVm(src, vm, { signal })
    await Promise.all([pipeline(exported.body, createWriteStream(file)), exported.task])
    const sr = srRef(sim, 'dst-shared')
    const [copy] = await importVm(dst, createReadStream(file), { sr, signal })
    expect(diskHashes(sim, copy!)).toEqual(diskHashes(sim, vm))
    const db = sim.db.poolOf(copy!)!
    for (const vbd of db.get(copy!)!.VBDs as string[]) {
      const vdi = db.get(vbd)!.VDI as string
      if (vdi !== 'OpaqueRef:NULL') expect(db.get(vdi)!.SR).toBe(sr)
    }
    expect(taskCount(sim, 1)).toBe(0)
  })

  it('exports metadata only (Content-Length, ova.xml only)', async ({ sim, src, signal }) => {
    const progress = progressRecorder()
    const exported = await exportVm(src, vmRef(sim, 'running'), {
      metadataOnly: true,
      signal,
      onProgress: progress.onProgress,
    })
    const chunks: Buffer[] = []
    for await (const chunk of exported.body) chunks.push(chunk as Buffer)
    await exported.task
    const archive = Buffer.concat(chunks)
    expect(archive.subarray(0, 7).toString('latin1')).toBe('ova.xml')
    const summary = await verifyXva(Readable.from([archive]), { metadataOnly: true })
    expect(summary.disks).toEqual([])
    expect(progress.events.at(-1)).toMatchObject({
      bytes: archive.length,
      totalBytes: archive.length,
      fraction: 1,
    })
    expect(taskCount(sim, 0)).toBe(0)
  })

  it('fails with the task error when the VM is running', async ({ sim, src, signal }) => {
    const error = await exportVm(src, vmRef(sim, 'running'), { signal }).catch((e: unknown) => e)
    expect(error).toMatchObject({ name: 'XapiError', code: 'VM_BAD_POWER_STATE' })
    expect(taskCount(sim, 0)).toBe(0)
  })

  it('keeps a suspended VM suspended with preservePowerState', async ({
    sim,
    src,
    dst,
    signal,
  }) => {
    const vm = vmRef(sim, 'suspended')
    const exported = await exportVm(src, vm, { preservePowerState: true, signal })
    const [copy] = await Promise.all([importVm(dst, exported.body, { signal }), exported.task])
    expect(sim.db.get(copy![0]!)?.power_state).toBe('Suspended')
  })
})

describe('pool to pool', () => {
  it('pipes an export into an import with bounded buffering', async ({ sim, src, dst, signal }) => {
    const vm = vmRef(sim, 'big')
    let exportedBytes = 0
    let maxAhead = 0
    const exported = await exportVm(src, vm, {
      signal,
      onProgress: (p: TransferProgress) => (exportedBytes = p.bytes),
    })
    // A slow consumer: without backpressure the export would run far ahead of the import.
    let importedBytes = 0
    async function* slowly(): AsyncGenerator<Buffer> {
      for await (const chunk of exported.body) {
        maxAhead = Math.max(maxAhead, exportedBytes - importedBytes)
        importedBytes += (chunk as Buffer).length
        await sleep(1)
        yield chunk as Buffer
      }
    }
    const [vms] = await Promise.all([importVm(dst, slowly(), { signal }), exported.task])
    expect(diskHashes(sim, vms[0]!)).toEqual(diskHashes(sim, vm))
    expect(importedBytes).toBeGreaterThan(64 * MiB)
    expect(maxAhead).toBeLessThan(32 * MiB)
    expect(vmNames(sim, 1)).toEqual(['big'])
    expect(taskCount(sim, 0) + taskCount(sim, 1)).toBe(0)
  })
})

describe('refused imports', () => {
  it('an import refused before its body gets the task error; the export feeding it is cancelled', async ({
    sim,
    src,
    dst,
    signal,
  }) => {
    const exported = await exportVm(src, vmRef(sim, 'halted'), { signal })
    const bogus = 'OpaqueRef:00000000-0000-0000-0000-000000000000' as Ref<'SR'>
    const [imported, exportTask] = await Promise.allSettled([
      importVm(dst, exported.body, { sr: bogus, signal }),
      exported.task,
    ])
    expect(imported).toMatchObject({
      status: 'rejected',
      reason: { name: 'XapiError', code: 'HANDLE_INVALID' },
    })
    expect(exportTask).toMatchObject({
      status: 'rejected',
      reason: { code: 'XAPI_CLIENT_BODY_DESTROYED' },
    })
    expect(sim.calls.some((c) => c.method === 'task.cancel')).toBe(true)
    expect(vmNames(sim, 1)).toEqual([])
    await expect.poll(() => taskCount(sim, 0) + taskCount(sim, 1)).toBe(0)
    await expect.poll(() => sim.db.get(vmRef(sim, 'halted'))?.current_operations).toEqual({})
  })
})

describe('transports', () => {
  it('works over TLS with a pinned certificate, redirects included', async ({ signal }) => {
    await using pools = await startTlsPools()
    const { sim, src, dst } = pools
    const vm = vmRef(sim, 'on-local-2')
    const exported = await exportVm(src, vm, { signal })
    const [vms] = await Promise.all([
      importVm(dst, exported.body, { sr: srRef(sim, 'dst-local-2'), signal }),
      exported.task,
    ])
    expect(diskHashes(sim, vms[0]!)).toEqual(diskHashes(sim, vm))
  })

  it('works over the dom0 unix socket', async ({ dir, signal }) => {
    await using pool = await startLocalPool(dir)
    const { sim, local } = pool
    const vm = vmRef(sim, 'halted')
    const exported = await exportVm(local, vm, { signal })
    const [vms] = await Promise.all([importVm(local, exported.body, { signal }), exported.task])
    expect(diskHashes(sim, vms[0]!)).toEqual(diskHashes(sim, vm))
  })
})
