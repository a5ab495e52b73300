import { Readable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { ChunkedDecoder } from './chunked.js'

async function decode(pieces: string[]): Promise<string> {
  const out: Buffer[] = []
  for await (const c of Readable.from(pieces.map((p) => Buffer.from(p, 'latin1'))).pipe(
    new ChunkedDecoder()
  )) {
    out.push(c as Buffer)
  }
  return Buffer.concat(out).toString('latin1')
}

describe('ChunkedDecoder', () => {
  const body = '5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: 1\r\n\r\n'

  it('decodes whole and split at every byte', async () => {
    expect(await decode([body])).toBe('hello, world')
    expect(await decode([...body])).toBe('hello, world')
  })

  it('rejects a body cut before its last chunk', async () => {
    await expect(decode(['5\r\nhel'])).rejects.toMatchObject({ code: 'XAPI_CLIENT_TRANSPORT' })
  })

  it('rejects a bad size line or a missing CRLF', async () => {
    await expect(decode(['zz\r\n'])).rejects.toThrow(/bad chunk size/)
    await expect(decode(['1\r\nab\r\n'])).rejects.toThrow(/missing CRLF/)
  })
})
