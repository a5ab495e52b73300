import { Transform, type TransformCallback } from 'node:stream'
import { XapiTransportError } from '../errors.js'

const MAX_LINE = 4096

/**
 * Decodes a `Transfer-Encoding: chunked` response body. xapi never sends one (its exports are
 * close-delimited HTTP/1.0 bodies, and we ask in HTTP/1.0), but a proxy or another server in
 * front of it might; without this, the chunk framing would be taken for archive bytes.
 */
export class ChunkedDecoder extends Transform {
  #state: 'size' | 'data' | 'data-end' | 'trailer' | 'done' = 'size'
  #line = ''
  #left = 0

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      let at = 0
      while (at < chunk.length && this.#state !== 'done') {
        if (this.#state === 'data') {
          const n = Math.min(this.#left, chunk.length - at)
          this.push(chunk.subarray(at, at + n))
          at += n
          this.#left -= n
          if (this.#left === 0) this.#state = 'data-end'
          continue
        }
        const nl = chunk.indexOf(0x0a, at)
        const end = nl === -1 ? chunk.length : nl
        this.#line += chunk.toString('latin1', at, end)
        at = nl === -1 ? chunk.length : nl + 1
        if (this.#line.length > MAX_LINE) throw malformed('a line is too long')
        if (nl !== -1) this.#endLine(this.#line.replace(/\r$/, ''))
      }
      callback()
    } catch (error) {
      callback(error as Error)
    }
  }

  #endLine(line: string): void {
    this.#line = ''
    switch (this.#state) {
      case 'size': {
        const size = /^([0-9a-fA-F]{1,12})\s*(?:;.*)?$/.exec(line)
        if (!size) throw malformed(`bad chunk size line`)
        this.#left = parseInt(size[1]!, 16)
        this.#state = this.#left === 0 ? 'trailer' : 'data'
        return
      }
      case 'data-end':
        if (line !== '') throw malformed('missing CRLF after a chunk')
        this.#state = 'size'
        return
      case 'trailer':
        if (line === '') this.#state = 'done'
        return
    }
  }

  override _flush(callback: TransformCallback): void {
    if (this.#state === 'done') callback()
    else callback(new XapiTransportError('chunked response body ended before its last chunk'))
  }
}

function malformed(what: string): XapiTransportError {
  return new XapiTransportError(`malformed chunked response body: ${what}`)
}
