import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'

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

/**
 * A body with a Content-Length, framed by node's parser; a connection dropped early just ends it
 * (the XVA verifier then reports IMPORT_ERROR_PREMATURE_EOF).
 */
export async function* lengthBody(req: IncomingMessage): AsyncGenerator<Buffer> {
  try {
    for await (const c of req) yield c as Buffer
  } catch {
    return
  }
}

/** A close-delimited body, read raw from a connection taken over (`takeOverConnection`). */
export async function* rawBody(req: IncomingMessage, socket: Socket): AsyncGenerator<Buffer> {
  await new Promise((r) => setImmediate(r))
  for (let c = req.read() as Buffer | null; c !== null; c = req.read() as Buffer | null) yield c
  for (;;) {
    const c = socket.read() as Buffer | null
    if (c !== null) yield c
    else if (socket.readableEnded || socket.destroyed) return
    else await waitReadable(socket)
  }
}
