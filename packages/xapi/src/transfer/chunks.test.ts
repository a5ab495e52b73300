import { PassThrough, Readable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { chunksOf } from './chunks.js'

describe('chunksOf', () => {
  it('yields the chunks of a Readable as pushed, without concatenating them', async () => {
    const parts = Array.from({ length: 20 }, (_, i) => Buffer.alloc(1000, i))
    const stream = new PassThrough({ highWaterMark: 64 * 1024 })
    for (const p of parts) stream.write(p)
    stream.end()
    const seen: Buffer[] = []
    for await (const chunk of chunksOf(stream)) seen.push(chunk)
    expect(seen.map((c) => c.length)).toEqual(parts.map((p) => p.length))
    expect(Buffer.concat(seen)).toEqual(Buffer.concat(parts))
  })

  it('throws the error the stream is destroyed with', async () => {
    const stream = new PassThrough()
    stream.write(Buffer.from('a'))
    setTimeout(() => stream.destroy(new Error('export failed')), 10)
    const consume = async () => {
      for await (const _ of chunksOf(stream)) void _
    }
    await expect(consume()).rejects.toThrow('export failed')
  })

  it('destroys the stream when the consumer leaves early', async () => {
    const stream = Readable.from([Buffer.from('a'), Buffer.from('b'), Buffer.from('c')], {
      objectMode: false,
    })
    for await (const _ of chunksOf(stream)) break
    expect(stream.destroyed).toBe(true)
  })

  it('passes other async iterables through', () => {
    const iterable = { async *[Symbol.asyncIterator]() {} }
    expect(chunksOf(iterable as AsyncIterable<Buffer>)).toBe(iterable)
  })
})
