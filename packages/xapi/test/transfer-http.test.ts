/**
 * Protocol details of the raw HTTP/1.0 layer used by exportVm/importVm, against tiny raw servers
 * (real sockets). The end-to-end behaviour is tested against the simulator in transfer-*.test.ts.
 */
import http from 'node:http'
import net from 'node:net'
import { Readable } from 'node:stream'
import { afterEach, describe, expect, it } from 'vitest'
import { MAX_REDIRECTS, openRequest } from '../src/transfer/request.js'
import { actionTarget } from '../src/transfer/url.js'
import { destroyConnection } from '../src/transfer/http-connection.js'
import { startSimulator } from '@xapi-ops/xapi-sim'
import { connect, exportVm, verifyXva, type Ref } from '../src/index.js'
import { TRANSFER_SEED, diskHashes } from './transfer-fixtures.js'

type Raw = { port: number; heads: string[]; bodies: Buffer[]; close(): Promise<void> }
const servers: Raw[] = []
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()))
})

/** A server that reads the request head, then lets `onHead` answer on the raw socket. */
async function rawServer(
  onHead: (socket: net.Socket, head: string, raw: Raw) => void
): Promise<Raw> {
  const sockets = new Set<net.Socket>()
  const server = net.createServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
    let buf = Buffer.alloc(0)
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk])
      const end = buf.indexOf('\r\n\r\n')
      if (end < 0) return
      socket.off('data', onData)
      const head = buf.subarray(0, end).toString('latin1')
      raw.heads.push(head)
      const rest = buf.subarray(end + 4)
      if (rest.length > 0) socket.unshift(rest)
      onHead(socket, head, raw)
    }
    socket.on('data', onData)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const raw: Raw = {
    port: (server.address() as net.AddressInfo).port,
    heads: [],
    bodies: [],
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  }
  servers.push(raw)
  return raw
}

const noAgent = () => undefined

describe('openRequest (head first, then body)', () => {
  it('answers a PUT before any body byte is sent, then streams a close-delimited body', async ({
    signal,
  }) => {
    const received: Buffer[] = []
    let resolveBody!: (b: Buffer) => void
    const done = new Promise<Buffer>((resolve) => (resolveBody = resolve))
    const server = await rawServer((socket) => {
      // xapi: 200 + task-id (no space after the colon) before reading the body.
      socket.write('HTTP/1.1 200 OK\r\nConnection: close\r\ntask-id:OpaqueRef:t1\r\n\r\n')
      socket.on('data', (c: Buffer) => received.push(c))
      socket.on('end', () => {
        resolveBody(Buffer.concat(received))
        socket.end()
      })
    })
    const target = actionTarget(`http://127.0.0.1:${server.port}`, '/import', {
      session_id: 'OpaqueRef:secret-session',
      task_id: 'OpaqueRef:t1',
    })
    const { conn, head } = await openRequest(noAgent, 'PUT', target, {}, signal)
    expect(head.status).toBe(200)
    expect(head.headers.get('task-id')).toBe('OpaqueRef:t1')
    expect(received).toHaveLength(0)
    conn.stream.write(Buffer.from('first '))
    conn.stream.end(Buffer.from('last'))
    expect((await done).toString()).toBe('first last')
    destroyConnection(conn)
    const [requestHead = ''] = server.heads
    expect(requestHead.split('\r\n')[0]).toBe(
      'PUT /import?session_id=OpaqueRef%3Asecret-session&task_id=OpaqueRef%3At1 HTTP/1.0'
    )
    expect(requestHead).not.toMatch(/transfer-encoding/i)
    expect(requestHead).not.toMatch(/content-length/i)
  })

  it('follows 302s across servers, keeping the query xapi copied into Location', async ({
    signal,
  }) => {
    const final = await rawServer((socket) => {
      socket.end('HTTP/1.0 200 OK\r\nConnection: close\r\n\r\nbody-bytes')
    })
    const middle = await rawServer((socket, head) => {
      const query = head.split(' ')[1]!.split('?')[1]
      socket.end(
        `HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:${final.port}/export?${query}\r\n\r\n`
      )
    })
    const first = await rawServer((socket, head) => {
      const path = head.split(' ')[1]!
      socket.end(`HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:${middle.port}${path}\r\n\r\n`)
    })
    const target = actionTarget(`http://127.0.0.1:${first.port}`, '/export', {
      session_id: 'OpaqueRef:s',
      ref: 'OpaqueRef:vm',
    })
    const { conn, head } = await openRequest(
      noAgent,
      'GET',
      target,
      { 'Content-Length': '0' },
      signal
    )
    expect(head.status).toBe(200)
    const chunks: Buffer[] = []
    for await (const chunk of conn.stream) chunks.push(chunk as Buffer)
    expect(Buffer.concat(chunks).toString()).toBe('body-bytes')
    expect(conn.target.base.port).toBe(String(final.port))
    for (const s of [first, middle, final]) {
      expect(s.heads[0]).toMatch(
        /^GET \/export\?session_id=OpaqueRef%3As&ref=OpaqueRef%3Avm HTTP\/1\.0\r\n/
      )
    }
  })

  it(`gives up after ${MAX_REDIRECTS} redirects without printing the session`, async ({
    signal,
  }) => {
    const loop = await rawServer((socket, head) => {
      socket.end(`HTTP/1.1 302 Found\r\nLocation: ${head.split(' ')[1]}\r\n\r\n`)
    })
    const target = actionTarget(`http://127.0.0.1:${loop.port}`, '/import', {
      session_id: 'OpaqueRef:secret',
    })
    const error = await openRequest(noAgent, 'PUT', target, {}, signal).catch((e: unknown) => e)
    expect(error).toMatchObject({ code: 'XAPI_CLIENT_TOO_MANY_REDIRECTS', status: 302 })
    expect(String((error as Error).message)).not.toContain('secret')
    expect(loop.heads).toHaveLength(MAX_REDIRECTS + 1)
  })

  it('rejects with the signal reason when aborted while waiting for the answer', async () => {
    const silent = await rawServer(() => {})
    const ctl = new AbortController()
    const target = actionTarget(`http://127.0.0.1:${silent.port}`, '/export', {})
    const pending = openRequest(noAgent, 'GET', target, {}, ctl.signal)
    await expect.poll(() => silent.heads.length).toBe(1)
    ctl.abort(new Error('stop'))
    await expect(pending).rejects.toThrow('stop')
  })
})

describe('a proxy answering exports with a chunked body', () => {
  it('is decoded: same archive, verified', async ({ signal }) => {
    await using sim = await startSimulator({ seed: TRANSFER_SEED, timeScale: 0.01 })
    const upstream = new URL(sim.pools[0]!.masterUrl)
    const proxy = http.createServer((req, res) => {
      const forward = http.request(
        {
          host: upstream.hostname,
          port: upstream.port,
          method: req.method,
          path: req.url,
          headers: req.headers,
        },
        (answer) => {
          if (!req.url?.startsWith('/export') || answer.statusCode !== 200) {
            res.writeHead(answer.statusCode ?? 500, answer.headers)
            answer.pipe(res)
            return
          }
          // Re-frame the close-delimited body as chunks, whatever HTTP version was asked.
          const socket = res.socket!
          socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n')
          answer.on('data', (c: Buffer) =>
            socket.write(`${c.length.toString(16)}\r\n${c.toString('latin1')}\r\n`, 'latin1')
          )
          answer.on('end', () => socket.end('0\r\n\r\n'))
        }
      )
      req.pipe(forward)
    })
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve))
    try {
      const port = (proxy.address() as net.AddressInfo).port
      await using client = await connect({
        url: `http://127.0.0.1:${port}`,
        user: sim.user,
        password: sim.password,
      })
      const vm = sim.db.find('VM', (r) => r.name_label === 'halted')![0] as Ref<'VM'>
      const exported = await exportVm(client, vm, { signal })
      const chunks: Buffer[] = []
      for await (const c of exported.body) chunks.push(c as Buffer)
      await exported.task
      const summary = await verifyXva(Readable.from([Buffer.concat(chunks)]))
      expect(summary.disks.map((d) => d.hash).sort()).toEqual(diskHashes(sim, vm).sort())
      expect(summary.disks).toHaveLength(2)
    } finally {
      proxy.closeAllConnections()
      await new Promise((resolve) => proxy.close(resolve))
    }
  })
})

describe('a proxy answering an error status', () => {
  it('rejects with the status and leaves no task behind', async ({ signal }) => {
    await using sim = await startSimulator({ seed: TRANSFER_SEED, timeScale: 0.01 })
    const upstream = new URL(sim.pools[0]!.masterUrl)
    const proxy = http.createServer((req, res) => {
      if (req.url?.startsWith('/export')) {
        req.resume()
        res.writeHead(502, { 'content-type': 'text/plain' }).end('bad gateway\n')
        return
      }
      const forward = http.request(
        {
          host: upstream.hostname,
          port: upstream.port,
          method: req.method,
          path: req.url,
          headers: req.headers,
        },
        (answer) => {
          res.writeHead(answer.statusCode ?? 500, answer.headers)
          answer.pipe(res)
        }
      )
      req.pipe(forward)
    })
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve))
    try {
      const port = (proxy.address() as net.AddressInfo).port
      await using client = await connect({
        url: `http://127.0.0.1:${port}`,
        user: sim.user,
        password: sim.password,
      })
      const vm = sim.db.find('VM', (r) => r.name_label === 'halted')![0] as Ref<'VM'>
      const error = await exportVm(client, vm, { signal }).catch((e: unknown) => e)
      expect(error).toMatchObject({ code: 'XAPI_CLIENT_TRANSPORT', status: 502 })
      expect((error as Error).message).toBe(
        `HTTP 502 Bad Gateway from GET http://127.0.0.1:${port}/export`
      )
      expect(sim.db.pool('src').all('task').size).toBe(0)
    } finally {
      proxy.closeAllConnections()
      await new Promise((resolve) => proxy.close(resolve))
    }
  })
})
