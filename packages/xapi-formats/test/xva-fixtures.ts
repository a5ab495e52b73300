import { Readable } from 'node:stream'
import { xxh64 } from '@node-rs/xxhash'
import { DiskHasher, XVA_BLOCK_SIZE } from '../src/index.js'
import type { XvaDiskSource, XvaExportObject } from '../src/index.js'

export const MiB = XVA_BLOCK_SIZE

/** Block `i` of test disk `seed`: zeros when `i % 3 === 1`, else bytes derived from (seed, i). */
export function testBlock(seed: string, size: number, i: number): Buffer | null {
  const len = Math.min(MiB, size - i * MiB)
  if (i % 3 === 1) return null
  const b = Buffer.alloc(len)
  const word = xxh64(`${seed}:${i}`)
  for (let off = 0; off + 8 <= len; off += 4096) b.writeBigUInt64LE(word, off)
  if (len % 8 !== 0) b[len - 1] = 0xaa
  return b
}

export function testDisk(ref: string, seed: string, size: number): XvaDiskSource {
  return { vdi: ref, readBlock: (i) => testBlock(seed, size, i) }
}

export function expectedHash(seed: string, size: number): string {
  const h = new DiskHasher(size)
  for (let i = 0; i * MiB < size; i++) {
    const b = testBlock(seed, size, i)
    if (b) h.addBlock(i, b)
  }
  return h.digest()
}

/** A halted VM with disks (`sizes`), an empty CD drive and an ISO disk that is not streamed. */
export function vmObjects(sizes: number[]): XvaExportObject[] {
  const vm = 'OpaqueRef:vm'
  const sr = 'OpaqueRef:sr'
  const isoSr = 'OpaqueRef:iso-sr'
  const objs: XvaExportObject[] = []
  const vbds: string[] = []
  sizes.forEach((size, i) => {
    vbds.push(`OpaqueRef:vbd${i}`)
    objs.push({
      class: 'VBD',
      ref: `OpaqueRef:vbd${i}`,
      record: {
        VM: vm,
        VDI: `OpaqueRef:vdi${i}`,
        type: 'Disk',
        userdevice: String(i),
        bootable: i === 0,
      },
    })
    objs.push({
      class: 'VDI',
      ref: `OpaqueRef:vdi${i}`,
      record: { SR: sr, virtual_size: String(size), type: 'user', name_label: `disk ${i}` },
    })
  })
  objs.push(
    {
      class: 'VBD',
      ref: 'OpaqueRef:cd',
      record: { VM: vm, VDI: 'OpaqueRef:NULL', type: 'CD', empty: true },
    },
    {
      class: 'VBD',
      ref: 'OpaqueRef:iso-vbd',
      record: { VM: vm, VDI: 'OpaqueRef:iso', type: 'CD' },
    },
    {
      class: 'VDI',
      ref: 'OpaqueRef:iso',
      record: { SR: isoSr, virtual_size: '1048576', type: 'user' },
    },
    { class: 'SR', ref: sr, record: { content_type: 'user', name_label: 'Local storage' } },
    { class: 'SR', ref: isoSr, record: { content_type: 'iso', name_label: 'ISOs' } }
  )
  vbds.push('OpaqueRef:cd', 'OpaqueRef:iso-vbd')
  objs.unshift({
    class: 'VM',
    ref: vm,
    record: {
      uuid: 'd6b2c8f0-0000-4000-8000-000000000001',
      name_label: 'test vm',
      power_state: 'Halted',
      VBDs: vbds,
      VIFs: [],
      is_a_template: false,
      memory_static_max: '1073741824',
      other_config: { 'OpaqueRef:elsewhere': 'x' },
    },
  })
  return objs
}

export async function collect(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = []
  for await (const c of stream) parts.push(c as Buffer)
  return Buffer.concat(parts)
}

export function chunked(buf: Buffer, size = 65536): Readable {
  return Readable.from(
    (function* () {
      for (let off = 0; off < buf.length; off += size) yield buf.subarray(off, off + size)
    })()
  )
}
