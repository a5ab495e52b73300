import { Readable } from 'node:stream'

/** How many chunks may wait before the source is paused. */
const QUEUE_CHUNKS = 8

/**
 * The chunks of a Readable one at a time, as they were pushed. Readable's own async iterator
 * calls `read()` without a size, which concatenates everything buffered into a new Buffer: for
 * an export body piped into an import that is a copy (and garbage) of every byte moved. Other
 * async iterables are returned as they are. Like Readable's iterator, leaving early (break,
 * throw) destroys the stream.
 */
export function chunksOf(source: Readable | AsyncIterable<Buffer>): AsyncIterable<Buffer> {
  return source instanceof Readable ? readChunks(source) : source
}

async function* readChunks(stream: Readable): AsyncGenerator<Buffer> {
  const queue: Buffer[] = []
  let ended = false
  let failure: unknown
  let wake: (() => void) | undefined
  const notify = () => {
    wake?.()
    wake = undefined
  }
  const onData = (chunk: Buffer | string) => {
    queue.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk)
    if (queue.length >= QUEUE_CHUNKS) stream.pause()
    notify()
  }
  const onEnd = () => {
    ended = true
    notify()
  }
  const onError = (error: unknown) => {
    failure ??= error
    notify()
  }
  const onClose = () => {
    if (!stream.readableEnded) {
      failure ??=
        stream.errored ??
        Object.assign(new Error('Premature close'), {
          code: 'ERR_STREAM_PREMATURE_CLOSE',
        })
    }
    notify()
  }
  if (stream.errored) throw stream.errored
  stream.on('data', onData)
  stream.on('end', onEnd)
  stream.on('error', onError)
  stream.on('close', onClose)
  try {
    for (;;) {
      const chunk = queue.shift()
      if (chunk !== undefined) {
        if (queue.length < QUEUE_CHUNKS / 2 && stream.isPaused()) stream.resume()
        yield chunk
        continue
      }
      if (failure !== undefined) throw failure
      if (ended) return
      if (stream.isPaused()) stream.resume()
      await new Promise<void>((resolve) => (wake = resolve))
    }
  } finally {
    stream.off('data', onData)
    stream.off('end', onEnd)
    stream.off('error', onError)
    stream.off('close', onClose)
    if (!stream.readableEnded && !stream.destroyed) stream.destroy()
  }
}
