import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { readFile, readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import type { Simulator } from '@xapi-ops/xapi-sim'
import { describe, expect } from 'vitest'
import { exportVmToFile, importVm, verifyXva } from '../src/index.js'
import {
  startLocalPool,
  startTlsPools,
  diskHashes,
  it,
  progressRecorder,
  taskCount,
  vmRef,
} from './transfer-fixtures.js'

const sha256 = async (file: string) =>
  createHash('sha256')
    .update(await readFile(file))
    .digest('hex')

/** No file (not even a `.part`) and no task left on the source pool. */
async function expectNothingLeft(sim: Simulator, dir: string): Promise<void> {
  expect(await readdir(dir)).toEqual([])
  expect(taskCount(sim, 0)).toBe(0)
}

describe('exportVmToFile', () => {
  const cases = [
    ['none', 'halted.xva', { compression: 'none' }],
    ['gzip', 'halted.xva.gz', { compression: 'gzip' }],
    ['zstd', 'halted.xva.zst', { compression: 'zstd' }],
    // The host sends it raw, zstd is done here.
    ['zstd', 'halted.xva.zst', { clientCompression: { codec: 'zstd', level: 3, threads: 2 } }],
  ] as const
  for (const [kind, name, options] of cases) {
    it(`writes the verified archive, its SHA-256, and nothing else (${JSON.stringify(options)})`, async ({
      sim,
      src,
      dst,
      dir,
      signal,
    }) => {
      const vm = vmRef(sim, 'halted')
      const file = join(dir, name)
      const progress = progressRecorder()
      const written = await exportVmToFile(src, vm, file, {
        ...options,
        sha256: true,
        fsync: true,
        signal,
        onProgress: progress.onProgress,
      })
      expect(written).toEqual({ bytes: (await stat(file)).size, sha256: await sha256(file) })
      expect(await readdir(dir)).toEqual([name])
      expect(progress.check()).toEqual([])
      expect(taskCount(sim, 0)).toBe(0)
      const summary = await verifyXva(createReadStream(file))
      expect(summary.compression).toBe(kind)
      expect(summary.disks.map((d) => d.hash)).toEqual(diskHashes(sim, vm))
      const [copy] = await importVm(dst, createReadStream(file), { length: written.bytes, signal })
      expect(diskHashes(sim, copy!)).toEqual(diskHashes(sim, vm))
    })
  }

  it('clientCompression with a host compression, or a bad level: refused before anything', async ({
    sim,
    src,
    dir,
  }) => {
    const calls = sim.calls.length
    await expect(
      exportVmToFile(src, vmRef(sim, 'halted'), join(dir, 'x.xva.zst'), {
        compression: 'gzip',
        clientCompression: { codec: 'zstd' },
      })
    ).rejects.toMatchObject({ code: 'XAPI_CLIENT_INVALID_OPTION' })
    await expect(
      exportVmToFile(src, vmRef(sim, 'halted'), join(dir, 'x.xva.zst'), {
        clientCompression: { codec: 'zstd', level: 30 },
      })
    ).rejects.toThrow(/level/)
    expect(sim.calls.length).toBe(calls)
    expect(await readdir(dir)).toEqual([])
  })

  it('reads in place across many reads: a big disk, byte for byte', async ({
    sim,
    src,
    dir,
    signal,
  }) => {
    const vm = vmRef(sim, 'big')
    const file = join(dir, 'big.xva')
    await exportVmToFile(src, vm, file, { signal })
    const summary = await verifyXva(createReadStream(file))
    const hashes = summary.disks.map((d) => d.hash)
    expect(hashes).toEqual(diskHashes(sim, vm))
  })

  it('metadata only, and over TLS (through the stream) with a redirect', async ({
    dir,
    signal,
  }) => {
    await using pools = await startTlsPools()
    const { sim, src } = pools
    const vm = vmRef(sim, 'on-local-2')
    const file = join(dir, 'tls.xva')
    await exportVmToFile(src, vm, file, { signal })
    const summary = await verifyXva(createReadStream(file))
    expect(summary.disks.map((d) => d.hash)).toEqual(diskHashes(sim, vm))
    const meta = join(dir, 'meta.xva')
    await exportVmToFile(src, vm, meta, { metadataOnly: true, signal })
    await verifyXva(createReadStream(meta), { metadataOnly: true })
    expect((await stat(meta)).size).toBeLessThan(64 * 1024)
  })

  it('over the dom0 unix socket, read in place too', async ({ dir, signal }) => {
    await using pool = await startLocalPool(dir)
    const { sim, local } = pool
    const vm = vmRef(sim, 'halted')
    const file = join(dir, 'local.xva')
    await exportVmToFile(local, vm, file, { signal })
    const summary = await verifyXva(createReadStream(file))
    expect(summary.disks.map((d) => d.hash)).toEqual(diskHashes(sim, vm))
  })

  it('a file it cannot create fails before anything happens on the pool', async ({
    sim,
    src,
    dir,
  }) => {
    const calls = sim.calls.length
    await expect(
      exportVmToFile(src, vmRef(sim, 'halted'), join(dir, 'missing', 'x.xva'))
    ).rejects.toMatchObject({ code: 'ENOENT' })
    expect(sim.calls.slice(calls).map((c) => c.method)).not.toContain('task.create')
  })

  it('a host without zstd sends the archive raw: refused at its first bytes, no file', async ({
    sim,
    src,
    dir,
  }) => {
    sim.faults.transfer.withoutZstd()
    const file = join(dir, 'h.xva.zst')
    await expect(
      exportVmToFile(src, vmRef(sim, 'halted'), file, { compression: 'zstd' })
    ).rejects.toMatchObject({
      code: 'XAPI_CLIENT_COMPRESSION_MISMATCH',
      message: expect.stringMatching(/asked for a zstd archive .* sent an uncompressed archive/),
    })
    await expectNothingLeft(sim, dir)
    // gzip is asked as use_compression=true, which every release reads as gzip.
    await exportVmToFile(src, vmRef(sim, 'halted'), join(dir, 'h.xva.gz'), { compression: 'gzip' })
    expect((await verifyXva(createReadStream(join(dir, 'h.xva.gz')))).compression).toBe('gzip')
  })

  it('the task error for a running VM; no file', async ({ sim, src, dir }) => {
    await expect(
      exportVmToFile(src, vmRef(sim, 'running'), join(dir, 'r.xva'))
    ).rejects.toMatchObject({ code: 'VM_BAD_POWER_STATE' })
    await expectNothingLeft(sim, dir)
  })

  for (const [how, options] of [
    ['', {}],
    [' (compressed here)', { clientCompression: { codec: 'zstd' } }],
  ] as const) {
    it(`a dropped connection: the task error, no file${how}`, async ({ sim, src, dir }) => {
      sim.faults.transfer.dropAfterBytes(300_000, { on: 'export' })
      await expect(
        exportVmToFile(src, vmRef(sim, 'big'), join(dir, 'd.xva'), options)
      ).rejects.toMatchObject({ name: 'XapiError' })
      await expectNothingLeft(sim, dir)
    })

    it(`a corrupt block: the checksum error naming it, no file${how}`, async ({
      sim,
      src,
      dir,
    }) => {
      sim.faults.transfer.corruptBlock(0, 1)
      await expect(
        exportVmToFile(src, vmRef(sim, 'big'), join(dir, 'c.xva'), options)
      ).rejects.toMatchObject({
        code: 'IMPORT_ERROR',
        message: expect.stringMatching(/checksum failed/),
      })
      await expectNothingLeft(sim, dir)
    })
  }

  it('onResponse tells a 200 whose body broke at once from a refusal', async ({
    sim,
    src,
    dir,
  }) => {
    let answered = 0
    const onResponse = () => answered++
    sim.faults.transfer.dropAfterBytes(0, { on: 'export' })
    await expect(
      exportVmToFile(src, vmRef(sim, 'halted'), join(dir, 'd.xva'), { onResponse })
    ).rejects.toMatchObject({ name: 'XapiError' })
    expect(answered).toBe(1)
    await expect(
      exportVmToFile(src, vmRef(sim, 'running'), join(dir, 'r.xva'), { onResponse })
    ).rejects.toMatchObject({ code: 'VM_BAD_POWER_STATE' })
    expect(answered).toBe(1)
    expect(await readdir(dir)).toEqual([])
  })

  it('a stall: XAPI_CLIENT_STALLED, the task cancelled, no file', async ({ sim, src, dir }) => {
    sim.faults.transfer.stallSeconds(20, { afterBytes: 1_000_000, on: 'export' })
    await expect(
      exportVmToFile(src, vmRef(sim, 'big'), join(dir, 's.xva'), { stallTimeoutMs: 600 })
    ).rejects.toMatchObject({ code: 'XAPI_CLIENT_STALLED' })
    expect(sim.calls.some((c) => c.method === 'task.cancel')).toBe(true)
    await expectNothingLeft(sim, dir)
  })

  it('an abort mid-way: the reason, the task cancelled and destroyed, no file', async ({
    sim,
    src,
    dir,
  }) => {
    sim.faults.transfer.throttleBytesPerSec(8 * 2 ** 20, { on: 'export' })
    const ctl = new AbortController()
    const exported = exportVmToFile(src, vmRef(sim, 'big'), join(dir, 'a.xva'), {
      signal: ctl.signal,
      onProgress: (p) => {
        if (p.bytes > 2 * 2 ** 20) ctl.abort(new Error('operator abort'))
      },
    })
    await expect(exported).rejects.toThrow('operator abort')
    expect(sim.calls.some((c) => c.method === 'task.cancel')).toBe(true)
    await expectNothingLeft(sim, dir)
  })
})
