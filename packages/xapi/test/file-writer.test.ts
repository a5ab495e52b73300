import { createHash } from 'node:crypto'
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { FileWriter, writeToFile } from '../src/index.js'

// Chunks of odd sizes, 20 MiB in all: more than the ring holds (back-pressure), slots filled
// across chunk boundaries, and a last slot that is neither empty nor a whole number of blocks.
const chunks: Buffer[] = []
for (let i = 0, size = 1; i < 60; i++, size = (size * 7 + 13) % 900_000) {
  chunks.push(Buffer.alloc(size + 1, i))
}
const total = chunks.reduce((s, c) => s + c.length, 0)
const hex = (() => {
  const h = createHash('sha256')
  for (const c of chunks) h.update(c)
  return h.digest('hex')
})()

let dir: string
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'file-writer-'))
})
afterEach(async () => {
  await rm(dir, { recursive: true, force: true })
})

describe('FileWriter', () => {
  it.each([
    ['around the page cache', true],
    ['through the page cache', false],
  ])('writes the bytes in order %s, fsynced, with their SHA-256', async (_, direct) => {
    const file = join(dir, 'out.part')
    await writeFile(file, 'left by a killed run, longer than nothing')
    const writer = await FileWriter.open(file, { fsync: true, sha256: true, direct })
    // The caller may reuse a chunk's memory as soon as `write` returns.
    const scratch = Buffer.alloc(900_001)
    for (const c of chunks) {
      c.copy(scratch)
      await writer.write(scratch.subarray(0, c.length))
      scratch.fill(0xee)
    }
    expect(await writer.finish()).toEqual({ bytes: total, sha256: hex })
    const content = await readFile(file)
    expect(content.length).toBe(total)
    expect(createHash('sha256').update(content).digest('hex')).toBe(hex)
  })

  it('writes whole slots and an empty file exactly', async () => {
    const whole = join(dir, 'whole')
    const writer = await FileWriter.open(whole)
    const slot = Buffer.alloc(1024 * 1024, 7)
    for (let i = 0; i < 9; i++) await writer.write(slot)
    expect(await writer.finish()).toEqual({ bytes: 9 * slot.length, sha256: undefined })
    expect((await readFile(whole)).equals(Buffer.concat(Array(9).fill(slot)))).toBe(true)

    const empty = join(dir, 'empty')
    await (await FileWriter.open(empty)).finish()
    expect((await readFile(empty)).length).toBe(0)
  })

  it('writes in place with reserve/commit, mixed with copies, never handing out space a copy waits for', async () => {
    const file = join(dir, 'placed')
    const writer = await FileWriter.open(file, { sha256: true })
    const expected: Buffer[] = []
    let seq = 0
    const put = (view: Uint8Array, n: number) => {
      for (let i = 0; i < n; i++) view[i] = seq++ & 0xff
      expected.push(Buffer.from(view.subarray(0, n)))
      writer.commit(n)
    }
    for (let round = 0; round < 6; round++) {
      // In place while there is room (bounded: the worker may free slots as fast as they fill)...
      for (let k = 0, view = writer.reserve(); view && k < 40; k++, view = writer.reserve()) {
        put(view, Math.min(view.length, 300_000))
      }
      // ...then a copy far bigger than the ring (16 MiB), which waits for room (the worker hashes
      // several times slower than this thread copies): meanwhile no room is handed out.
      const chunk = Buffer.alloc(64 * 2 ** 20, round + 1)
      expected.push(chunk)
      const wait = writer.write(chunk)
      expect(wait).toBeInstanceOf(Promise)
      expect(writer.reserve()).toBeUndefined()
      await wait
      await writer.ready()
    }
    const content = Buffer.concat(expected)
    expect(await writer.finish()).toEqual({
      bytes: content.length,
      sha256: createHash('sha256').update(content).digest('hex'),
    })
    expect((await readFile(file)).equals(content)).toBe(true)
  })

  it('only hashes without a path, and hashes an empty stream', async () => {
    const writer = await FileWriter.open(undefined, { sha256: true })
    for (const c of chunks) await writer.write(c)
    expect(await writer.finish()).toEqual({ bytes: total, sha256: hex })
    const empty = await FileWriter.open(undefined, { sha256: true })
    expect((await empty.finish()).sha256).toBe(createHash('sha256').digest('hex'))
  })

  it('reports a failed write with its errno code', async () => {
    // /dev/full: every write fails with ENOSPC, as a full disk does.
    const writer = await FileWriter.open('/dev/full')
    const failure = (async () => {
      for (const c of chunks) await writer.write(c)
      await writer.finish()
    })()
    await expect(failure).rejects.toMatchObject({ code: 'ENOSPC' })
    await writer.close()
  })

  it('reports a file it cannot create', async () => {
    await expect(FileWriter.open(join(dir, 'missing', 'x'))).rejects.toMatchObject({
      code: 'ENOENT',
    })
  })

  it('stops its worker and closes the file when closed mid-way', async () => {
    const writer = await FileWriter.open(join(dir, 'x.part'), { sha256: true })
    for (const c of chunks.slice(0, 30)) await writer.write(c)
    await writer.close()
    await expect(writer.write(Buffer.alloc(1))).rejects.toThrow(/closed/)
    await expect(writer.finish()).rejects.toThrow(/closed/)
  })
})

describe('writeToFile', () => {
  it('puts the whole file in place, and nothing else', async () => {
    const path = join(dir, 'vm.xva')
    const written = await writeToFile(Readable.from(chunks), path, { fsync: true, sha256: true })
    expect(written).toEqual({ bytes: total, sha256: hex })
    expect(
      createHash('sha256')
        .update(await readFile(path))
        .digest('hex')
    ).toBe(hex)
    expect(await readdir(dir)).toEqual(['vm.xva'])
  })

  it('leaves no file when the confirmation fails, the source fails or the signal aborts', async () => {
    const path = join(dir, 'vm.xva')
    const refused = Promise.reject(new Error('the task failed'))
    await expect(writeToFile(Readable.from(chunks), path, { confirm: refused })).rejects.toThrow(
      'the task failed'
    )
    async function* broken() {
      yield* chunks.slice(0, 10)
      throw new Error('connection reset')
    }
    await expect(writeToFile(broken(), path)).rejects.toThrow('connection reset')
    const controller = new AbortController()
    let reads = 0
    const endless = new Readable({
      read() {
        this.push(chunks[3])
        if (++reads === 40) controller.abort(new Error('stop'))
      },
    })
    await expect(writeToFile(endless, path, { signal: controller.signal })).rejects.toThrow('stop')
    expect(endless.destroyed).toBe(true)
    expect(await readdir(dir)).toEqual([])
  })
})
