import { gzipSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import { xxh64 } from '@node-rs/xxhash'
import { DiskHasher, XVA_BLOCK_SIZE } from '@xapi-ops/xapi-formats'
import { DiskContent } from '../src/disk/content.js'

const MiB = XVA_BLOCK_SIZE

describe('DiskContent', () => {
  it('is deterministic per seed and sparse about the requested fraction', () => {
    const a = DiskContent.generated('vm-a', 64 * MiB)
    const b = DiskContent.generated('vm-a', 64 * MiB)
    const c = DiskContent.generated('vm-c', 64 * MiB)
    expect(a.hash()).toBe(b.hash())
    expect(a.hash()).not.toBe(c.hash())
    const used = a.physicalUtilisation() / MiB
    expect(used).toBeGreaterThan(0)
    expect(used).toBeLessThan(64)
    const allocated = Array.from({ length: 64 }, (_, i) => a.block(i)).filter((x) => x !== null)
    expect(allocated.length).toBe(used)
  })

  it('gives a short last block and compresses about 2x', () => {
    const d = DiskContent.generated('short', 3 * MiB + 100, 1)
    expect(d.blockCount).toBe(4)
    expect(d.block(3)?.length).toBe(100)
    const blk = d.block(1)!
    const ratio = blk.length / gzipSync(blk).length
    expect(ratio).toBeGreaterThan(1.5)
    expect(ratio).toBeLessThan(3)
  })

  it('hash equals DiskHasher over the same bytes, and survives copying block by block', () => {
    const src = DiskContent.generated('copy', 20 * MiB + 5)
    const dst = DiskContent.empty(20 * MiB + 5)
    const h = new DiskHasher(src.virtualSize)
    for (let i = 0; i < src.blockCount; i++) {
      const b = src.block(i) ?? Buffer.alloc(src.blockLength(i))
      h.addBlock(i, b)
      dst.writeBlock(i, b)
    }
    expect(dst.hash()).toBe(src.hash())
    expect(h.digest()).toBe(src.hash())
    expect(dst.physicalUtilisation()).toBe(src.physicalUtilisation())
    expect(DiskContent.empty(20 * MiB + 5).hash()).not.toBe(src.hash())
  })

  it('stores foreign bytes as given and clones copy-on-write', () => {
    const a = DiskContent.generated('cow', 8 * MiB, 1)
    const before = a.hash()
    const b = a.clone()
    const data = Buffer.alloc(MiB, 7)
    b.writeBlock(2, data)
    data.fill(9)
    expect(b.block(2)?.equals(Buffer.alloc(MiB, 7))).toBe(true)
    expect(a.hash()).toBe(before)
    expect(b.hash()).not.toBe(before)
    b.writeBlock(2, a.block(2)!)
    expect(b.hash()).toBe(before)
    b.writeBlock(3, Buffer.alloc(MiB))
    expect(b.block(3)).toBeNull()
    expect(b.physicalUtilisation()).toBe(7 * MiB)
    expect(() => b.writeBlock(8, data)).toThrow(RangeError)
  })

  it('a 16 GiB generated disk is cheap to hold', () => {
    const d = DiskContent.generated('big', 16 * 1024 * MiB)
    expect(d.blockCount).toBe(16384)
    expect(d.physicalUtilisation()).toBeGreaterThan(0)
    expect(d.clone().virtualSize).toBe(d.virtualSize)
  })
  it('blockPieces and writeBlockPieces carry the same bytes as block and writeBlock', () => {
    const src = DiskContent.generated('pieces', 4 * MiB + 100, 1)
    const foreign = Buffer.alloc(MiB, 7)
    src.writeBlock(1, foreign)
    const flat = (i: number) => {
      const p = src.blockPieces(i)
      return p === null ? null : { bytes: Buffer.concat(p.pieces), xxh64: p.xxh64 }
    }
    for (let i = 0; i < src.blockCount; i++) {
      const f = flat(i)!
      expect(f.bytes.equals(src.block(i)!)).toBe(true)
      expect(f.xxh64).toBe(xxh64(f.bytes))
    }
    // split at odd places, the generated header itself cut in two
    const viaPieces = DiskContent.empty(src.virtualSize)
    const viaBuffers = DiskContent.empty(src.virtualSize)
    for (let i = 0; i < src.blockCount; i++) {
      const b = src.block(i)!
      const cuts = [b.subarray(0, 5), b.subarray(5, 70_001), b.subarray(70_001)]
      viaPieces.writeBlockPieces(i, cuts, xxh64(b))
      viaBuffers.writeBlock(i, b)
    }
    viaPieces.writeBlockPieces(
      2,
      [Buffer.alloc(10), Buffer.alloc(MiB - 10)],
      xxh64(Buffer.alloc(MiB))
    )
    viaBuffers.writeBlock(2, Buffer.alloc(MiB))
    expect(viaPieces.hash()).toBe(viaBuffers.hash())
    expect(viaPieces.physicalUtilisation()).toBe(viaBuffers.physicalUtilisation())
    expect(viaPieces.isAllocated(2)).toBe(false)
    expect(viaPieces.block(1)!.equals(foreign)).toBe(true)
    expect(() => viaPieces.writeBlockPieces(0, [Buffer.alloc(3)], 0n)).toThrow(RangeError)
  })
})
