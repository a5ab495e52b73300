import { gzipSync } from 'node:zlib'
import { xxh64 } from '@node-rs/xxhash'
import { describe, expect, it } from 'vitest'
import {
  TAR_END,
  buildOvaXml,
  createXvaWriter,
  tarHeader,
  tarPadding,
  verifyXva,
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

const SIZES = [4 * MiB, 2 * MiB]
const objects = vmObjects(SIZES)
const disks = SIZES.map((size, i) => testDisk(`OpaqueRef:vdi${i}`, `seed${i}`, size))

function tar(files: [string, Buffer][], end = true): Buffer {
  const parts: Buffer[] = []
  for (const [name, data] of files) {
    parts.push(tarHeader(name, data.length), data, Buffer.alloc(tarPadding(data.length)))
  }
  if (end) parts.push(TAR_END)
  return Buffer.concat(parts)
}

const xx = (b: Buffer): Buffer => Buffer.from(xxh64(b).toString(16).toUpperCase().padStart(16, '0'))
const block = (name: string, data: Buffer): [string, Buffer][] => [
  [name, data],
  [`${name}.xxhash`, xx(data)],
]
const ova = (): [string, Buffer] => ['ova.xml', Buffer.from(buildOvaXml(vmObjects([2 * MiB])).xml)]
const b0 = testBlock('x', 2 * MiB, 0)!
const b1 = Buffer.alloc(MiB, 1)

describe('XVA verifier errors, as xapi reports them', () => {
  it('truncated archives are IMPORT_ERROR_PREMATURE_EOF, wherever the cut', async () => {
    const full = await collect(createXvaWriter({ objects, disks }))
    for (const cut of [100, 600, 5000, 2 * MiB + 17, full.length - 1024, full.length - 1]) {
      await expect(verifyXva(chunked(full.subarray(0, cut)))).rejects.toMatchObject({
        code: 'IMPORT_ERROR_PREMATURE_EOF',
      })
    }
    await expect(verifyXva(chunked(Buffer.alloc(0)))).rejects.toMatchObject({
      code: 'IMPORT_ERROR_PREMATURE_EOF',
    })
    for (const compression of ['gzip', 'zstd'] as const) {
      const z = await collect(createXvaWriter({ objects, disks, compression }))
      await expect(verifyXva(chunked(z.subarray(0, z.length >> 1)))).rejects.toMatchObject({
        code: 'IMPORT_ERROR_PREMATURE_EOF',
      })
    }
  })

  it('a first entry other than ova.xml is IMPORT_ERROR_UNEXPECTED_FILE, compressed or not', async () => {
    const bad = tar([['Ref:1/00000000', b1], ova()])
    const err = { code: 'IMPORT_ERROR_UNEXPECTED_FILE', params: ['ova.xml', 'Ref:1/00000000'] }
    await expect(verifyXva(chunked(bad))).rejects.toMatchObject(err)
    await expect(verifyXva(chunked(gzipSync(bad)))).rejects.toMatchObject(err)
  })

  it('a bad checksum names the block; force ignores it and reports it', async () => {
    const buf = await collect(
      createXvaWriter({ objects, disks, corruptChecksum: (d, b) => d === 0 && b === 2 })
    )
    const p = verifyXva(chunked(buf))
    await expect(p).rejects.toMatchObject({ code: 'IMPORT_ERROR' })
    const e = (await p.catch((x: unknown) => x)) as { params: string[] }
    expect(e.params[0]).toMatch(
      /^Block Ref:2\/00000002 checksum failed: original = [0-9A-F]{16}; recomputed = [0-9A-F]{16}$/
    )
    const s = await verifyXva(chunked(buf), { force: true })
    expect(s.checksumFailures).toHaveLength(1)
    expect(s.disks[0]!.hash).toBe(expectedHash('seed0', SIZES[0]!))
  })

  it('garbage is IMPORT_ERROR; corrupt gzip too', async () => {
    await expect(verifyXva(chunked(Buffer.alloc(4096, 'garbage')))).rejects.toMatchObject({
      code: 'IMPORT_ERROR',
    })
    const z = gzipSync(tar([ova(), ...block('Ref:2/00000000', b0)]))
    z.fill(0x55, 20, 60)
    await expect(verifyXva(chunked(z))).rejects.toMatchObject({ code: 'IMPORT_ERROR' })
  })

  it('an omitted last block makes the next header fail the prefix check', async () => {
    const bad = tar([ova(), ...block('Ref:2/00000000', b0)])
    await expect(verifyXva(chunked(bad))).rejects.toMatchObject({
      code: 'IMPORT_ERROR_PREMATURE_EOF',
    })
    const other = tar([ova(), ...block('Ref:2/00000000', b0), ...block('Ref:3/00000001', b1)])
    const e = await verifyXva(chunked(other)).catch((x: { code: string; params: string[] }) => x)
    expect(e).toMatchObject({ code: 'IMPORT_ERROR' })
    expect((e as { params: string[] }).params[0]).toMatch(/^Invalid XVA file/)
  })

  it('counters must increase; sizes must land on virtual_size; checksum must follow its block', async () => {
    const cases = [
      tar([ova(), ...block('Ref:2/00000001', b0), ...block('Ref:2/00000001', b1)]),
      tar([ova(), ...block('Ref:2/00000000', b0), ...block('Ref:2/00000002', b1)]), // gap → 3 MiB > 2 MiB
      tar([ova(), ['Ref:2/00000000', b0], ['Ref:2/00000000.md5', xx(b0)]]),
      tar([ova(), ['Ref:2/00000000', b0], ['Ref:2/00000009.xxhash', xx(b0)]]),
      tar([ova(), ...block('Ref:2/00000000', b0), ...block('Ref:2/00000001', b1), ['extra', b1]]),
    ]
    for (const c of cases)
      await expect(verifyXva(chunked(c))).rejects.toMatchObject({ code: 'IMPORT_ERROR' })
    const ok = tar([ova(), ...block('Ref:2/00000000', b0), ...block('Ref:2/00000001', b1)])
    expect((await verifyXva(chunked(ok))).disks).toHaveLength(1)
  })

  it('blocks of another length than 1 MiB, with gaps, give the same content hash', async () => {
    // 512 KiB entries: first_len = 512 KiB, so a counter gap of 2 is 512 KiB of zeros
    const data = Buffer.concat([b0, Buffer.alloc(MiB)])
    data.fill(7, MiB + 3 * 256 * 1024)
    const half = (i: number): Buffer => data.subarray(i * 512 * 1024, (i + 1) * 512 * 1024)
    const files = [ova(), ...block('Ref:2/00000000', half(0)), ...block('Ref:2/00000001', half(1))]
    files.push(
      ...block('Ref:2/00000003', Buffer.concat([half(3).subarray(0, 0)])),
      ...block('Ref:2/00000004', half(3))
    )
    const s = await verifyXva(chunked(tar(files)))
    const same = await verifyXva(
      chunked(
        tar([ova(), ...block('Ref:2/00000000', b0), ...block('Ref:2/00000001', data.subarray(MiB))])
      )
    )
    expect(s.disks[0]!.hash).toBe(same.disks[0]!.hash)
    expect(s.disks[0]!.keepAlives).toBe(1)
  })

  it('IMPORT_INCOMPATIBLE_VERSION when the exporter is newer than the importer', async () => {
    const buf = await collect(
      createXvaWriter({ objects, disks, version: { xapi_major: 25, xapi_minor: 39 } })
    )
    await expect(
      verifyXva(chunked(buf), { importerVersion: { major: 24, minor: 0 } })
    ).rejects.toMatchObject({
      code: 'IMPORT_INCOMPATIBLE_VERSION',
    })
    await expect(
      verifyXva(chunked(buf), { importerVersion: { major: 25, minor: 39 } })
    ).resolves.toBeTruthy()
  })

  it('a VBD pointing at a VDI missing from the archive is IMPORT_ERROR_FAILED_TO_FIND_OBJECT', async () => {
    const objs = vmObjects([MiB]).filter((o) => o.ref !== 'OpaqueRef:vdi0')
    const buf = await collect(createXvaWriter({ objects: objs }))
    await expect(verifyXva(chunked(buf))).rejects.toMatchObject({
      code: 'IMPORT_ERROR_FAILED_TO_FIND_OBJECT',
      params: ['OpaqueRef:NULL'],
    })
  })
})
