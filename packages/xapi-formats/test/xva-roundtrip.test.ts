import { describe, expect, it } from 'vitest'
import { Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import {
  DiskHasher,
  TarParser,
  createXvaVerifier,
  createXvaWriter,
  verifyXva,
  writeXva,
} from '../src/index.js'
import {
  MiB,
  chunked,
  collect,
  expectedHash,
  testBlock,
  testDisk,
  vmObjects,
} from './xva-fixtures.js'

const SIZES = [5 * MiB + 4096, 3 * MiB, 2 * MiB]

function disks(refs = SIZES) {
  return refs.map((size, i) => testDisk(`OpaqueRef:vdi${i}`, `seed${i}`, size))
}

function entries(tar: Buffer): { name: string; size: number }[] {
  const out: { name: string; size: number }[] = []
  const p = new TarParser({ entry: (e) => out.push(e), data: () => {}, end: () => {} })
  p.write(tar)
  return out
}

describe('XVA writer → verifier', () => {
  it('round trips with xxhash: ova.xml first, disks in Ref order, zero blocks omitted', async () => {
    // firstId 5: the VM is Ref:5, disks Ref:7, Ref:9, Ref:11, streamed as "Ref:11" < "Ref:7" < "Ref:9"
    const xva = createXvaWriter({ objects: vmObjects(SIZES), disks: disks(), firstId: 5 })
    const buf = await collect(xva)
    const names = entries(buf).map((e) => e.name)
    expect(names[0]).toBe('ova.xml')
    const prefixes = [...new Set(names.slice(1).map((n) => n.split('/')[0]))]
    expect(prefixes).toEqual(['Ref:11', 'Ref:7', 'Ref:9'])
    expect(names).toContain('Ref:7/00000000.xxhash')
    expect(names).not.toContain('Ref:7/00000001') // block 1 is zero
    expect(names).toContain('Ref:7/00000005') // last block, short
    const s = await verifyXva(chunked(buf))
    expect(s.compression).toBe('none')
    expect(s.checksumKinds).toEqual(['.xxhash'])
    expect(s.vms.map((v) => v.snapshot.name_label)).toEqual(['test vm'])
    expect(s.vms[0]!.snapshot.other_config).toEqual({ 'OpaqueRef:NULL': 'x' })
    expect(s.disks.map((d) => [d.id, d.virtualSize])).toEqual([
      ['Ref:11', 2 * MiB],
      ['Ref:7', 5 * MiB + 4096],
      ['Ref:9', 3 * MiB],
    ])
    expect(s.disks.map((d) => d.hash)).toEqual([
      expectedHash('seed2', SIZES[2]!),
      expectedHash('seed0', SIZES[0]!),
      expectedHash('seed1', SIZES[1]!),
    ])
    expect(s.bytes).toBe(buf.length)
  })

  it('round trips with SHA-1 .checksum entries', async () => {
    const buf = await collect(
      createXvaWriter({ objects: vmObjects(SIZES), disks: disks(), checksum: 'sha1' })
    )
    expect(entries(buf).map((e) => e.name)).toContain('Ref:2/00000000.checksum')
    const s = await verifyXva(chunked(buf, 1000))
    expect(s.checksumKinds).toEqual(['.checksum'])
    expect(s.disks[0]!.hash).toBe(expectedHash('seed0', SIZES[0]!))
  })

  for (const compression of ['gzip', 'zstd'] as const) {
    it(`round trips ${compression}-compressed, detected by magic bytes`, async () => {
      const buf = await collect(
        createXvaWriter({ objects: vmObjects(SIZES), disks: disks(), compression })
      )
      expect(buf.subarray(0, 2).toString('hex')).toBe(compression === 'gzip' ? '1f8b' : '28b5')
      const s = await verifyXva(chunked(buf, 7777))
      expect(s.compression).toBe(compression)
      expect(s.bytes).toBe(buf.length)
      expect(s.tarBytes).toBeGreaterThan(buf.length)
      expect(s.disks.map((d) => d.hash).sort()).toEqual(
        SIZES.map((size, i) => expectedHash(`seed${i}`, size)).sort()
      )
    })
  }

  it('accepts keep-alive blocks, which shift the counters', async () => {
    const buf = await collect(
      createXvaWriter({ objects: vmObjects(SIZES), disks: disks(), keepAlive: (_d, i) => i === 1 })
    )
    const names = entries(buf).map((e) => e.name)
    // disk 0: block 0, keep-alive 1 (empty), block 1 skipped (counter 2), block 2 → counter 3
    expect(names).toContain('Ref:2/00000003')
    expect(entries(buf).find((e) => e.name === 'Ref:2/00000001')?.size).toBe(0)
    const s = await verifyXva(chunked(buf))
    expect(s.disks.map((d) => d.keepAlives)).toEqual([1, 1, 0])
    expect(s.disks[0]!.hash).toBe(expectedHash('seed0', SIZES[0]!))
  })

  it('passes bytes through unchanged and hands each non-zero aligned block to onBlock', async () => {
    const buf = await collect(createXvaWriter({ objects: vmObjects(SIZES), disks: disks() }))
    const seen: string[] = []
    const out: Buffer[] = []
    const v = createXvaVerifier({
      onBlock: (disk, index, data) => {
        seen.push(`${disk.id}/${index}`)
        const seed = `seed${(Number(disk.id.slice(4)) - 2) / 2}`
        expect(data.equals(testBlock(seed, disk.virtualSize, index)!)).toBe(true)
      },
    })
    await pipeline(
      chunked(buf, 100_000),
      v,
      new Writable({ write: (c, _e, cb) => (out.push(c), cb()) })
    )
    expect(Buffer.concat(out).equals(buf)).toBe(true)
    expect(seen).toEqual([
      'Ref:2/0',
      'Ref:2/2',
      'Ref:2/3',
      'Ref:2/5',
      'Ref:4/0',
      'Ref:4/2',
      'Ref:6/0',
    ])
    expect((await v.result).disks).toHaveLength(3)
  })

  it('writeXva writes to a Writable; a metadata-only archive is ova.xml + end marker', async () => {
    const parts: Buffer[] = []
    await writeXva(
      { objects: vmObjects([MiB]) },
      new Writable({ write: (c, _e, cb) => (parts.push(c), cb()) })
    )
    const buf = Buffer.concat(parts)
    expect(entries(buf).map((e) => e.name)).toEqual(['ova.xml'])
    const s = await verifyXva(chunked(buf), { metadataOnly: true })
    expect(s.disks).toEqual([])
    await expect(verifyXva(chunked(buf))).rejects.toMatchObject({
      code: 'IMPORT_ERROR_PREMATURE_EOF',
    })
  })

  it('a 16 GiB sparse disk is two data entries and verifies to the same hash', async () => {
    const size = 16 * 1024 * MiB
    const first = Buffer.alloc(MiB, 1)
    const last = Buffer.alloc(MiB, 2)
    const src = {
      vdi: 'OpaqueRef:vdi0',
      readBlock: (i: number) => (i === 0 ? first : i === 16383 ? last : null),
    }
    const xva = createXvaWriter({
      objects: vmObjects([size]),
      disks: [src],
      keepAlive: () => false,
    })
    const names: string[] = []
    const s = await verifyXva(xva, {
      onBlock: (_d, index) => names.push(String(index)),
    })
    expect(names).toEqual(['0', '16383'])
    const h = new DiskHasher(size)
    h.addBlock(0, first)
    h.addBlock(16383, last)
    expect(s.disks[0]!.hash).toBe(h.digest())
    expect(s.tarBytes).toBeLessThan(3 * MiB)
  })
})
