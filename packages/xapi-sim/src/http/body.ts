import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import type { Readable } from 'node:stream'

/**
 * Takes the connection of a request without Content-Length away from node's HTTP parser (which
 * reads such a body as empty), so that the body can be read raw until EOF, as xapi does for xe's
 * piped uploads. Call synchronously in the request handler. The client must wait for the response
 * head before sending the body (xapi answers before reading; xe waits).
 */
export function takeOverConnection(req: IncomingMessage): Socket {
  const socket = req.socket
  for (const l of socket.listeners('data')) socket.off('data', l as (...a: unknown[]) => void)
  for (const l of socket.listeners('end')) {
    if (l.name.includes('socketOnEnd')) socket.off('end', l as (...a: unknown[]) => void)
  }
  socket.pause()
  return socket
}

/** Bytes read ahead of the importer at most; the connection is paused above. */
const READ_AHEAD = 4 * 1024 * 1024

/**
 * The chunks of `stream` one by one, as they arrive (flowing mode, paused while READ_AHEAD bytes
 * wait): `read()` would concatenate what accumulated into a new buffer each time. Ends at the
 * stream's end or close; an error ends it too (the importer then reports a premature EOF).
 */
async function* chunksOf(stream: Readable): AsyncGenerator<Buffer> {
  const queue: Buffer[] = []
  let head = 0
  let queued = 0
  let over = false
  let wake: (() => void) | undefined
  const notify = () => {
    const w = wake
    wake = undefined
    w?.()
  }
  const onData = (c: Buffer) => {
    queue.push(c)
    queued += c.length
    if (queued >= READ_AHEAD) stream.pause()
    notify()
  }
  const onEnd = () => {
    over = true
    notify()
  }
  stream.on('data', onData)
  stream.on('end', onEnd)
  stream.on('close', onEnd)
  stream.on('error', onEnd)
  stream.resume()
  try {
    for (;;) {
      if (head < queue.length) {
        const c = queue[head]!
        queue[head++] = EMPTY
        if (head > 1024) {
          queue.splice(0, head)
          head = 0
        }
        queued -= c.length
        if (queued < READ_AHEAD / 2 && stream.isPaused() && !over) stream.resume()
        yield c
      } else if (over || stream.destroyed) return
      else await new Promise<void>((resolve) => (wake = resolve))
    }
  } finally {
    stream.off('data', onData)
    stream.off('end', onEnd)
    stream.off('close', onEnd)
    stream.off('error', onEnd)
  }
}

const EMPTY = Buffer.alloc(0)

/**
 * A body with a Content-Length, framed by node's parser; a connection dropped early just ends it
 * (the XVA verifier then reports IMPORT_ERROR_PREMATURE_EOF).
 */
export function lengthBody(req: IncomingMessage): AsyncGenerator<Buffer> {
  return chunksOf(req)
}

/** A close-delimited body, read raw from a connection taken over (`takeOverConnection`). */
export async function* rawBody(req: IncomingMessage, socket: Socket): AsyncGenerator<Buffer> {
  await new Promise((r) => setImmediate(r))
  for (let c = req.read() as Buffer | null; c !== null; c = req.read() as Buffer | null) yield c
  yield* chunksOf(socket)
}
