import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'

/**
 * Takes a request's connection away from node's HTTP parser, so that the body can be read raw:
 * with a Content-Length, or until EOF (close-delimited, as xe sends pipes; node's parser would
 * read such a body as empty). Call synchronously in the request handler. The client must wait for
 * the response head before sending a close-delimited body (xapi answers before reading, xe waits).
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

function waitReadable(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      socket.off('readable', done)
      socket.off('end', done)
      socket.off('close', done)
      resolve()
    }
    socket.on('readable', done)
    socket.on('end', done)
    socket.on('close', done)
  })
}

/** The request body: bytes the parser already took, then the raw socket, up to `length` or EOF. */
export async function* rawBody(
  req: IncomingMessage,
  socket: Socket,
  length: number | undefined
): AsyncGenerator<Buffer> {
  let left = length ?? Infinity
  await new Promise((r) => setImmediate(r))
  for (let c: Buffer | null = req.read(); c !== null && left > 0; c = req.read()) {
    const piece = c.length > left ? c.subarray(0, left) : c
    left -= piece.length
    yield piece
  }
  while (left > 0) {
    const c = socket.read() as Buffer | null
    if (c === null) {
      if (socket.readableEnded || socket.destroyed) return
      await waitReadable(socket)
      continue
    }
    const piece = c.length > left ? c.subarray(0, left) : c
    left -= piece.length
    yield piece
  }
}
