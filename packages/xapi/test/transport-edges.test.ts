import net from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import type { XapiError } from '../src/index.js'
import {
  XapiTimeoutError,
  XapiTransportError,
  connect,
  createClient,
  isXapiClientError,
  isXapiError,
} from '../src/index.js'
import { failure, startServer, xapiHandler, type TestServer } from './helpers/servers.js'

const auth = { user: 'root', password: 'hunter2' }
const SESSION = 'OpaqueRef:11111111-2222-3333-4444-555555555555'
const servers: TestServer[] = []
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()))
})

async function serve(...args: Parameters<typeof startServer>): Promise<TestServer> {
  const s = await startServer(...args)
  servers.push(s)
  return s
}

const login = () => SESSION
const basic = {
  'session.login_with_password': login,
  'session.logout': () => '',
  'VM.get_all': () => ['OpaqueRef:vm1'],
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p
  } catch (e) {
    return e as Error
  }
  throw new Error('expected a rejection')
}

describe('HTTP status and content type', () => {
  it('treats an HTML 500 as a transport error in every mode', async () => {
    const server = await serve((_req, res) => {
      res.writeHead(500, { 'content-type': 'text/html' })
      res.end('<html><body><h1>Internal Error</h1><p>boom</p></body></html>')
    })
    for (const transport of ['auto', 'xml-rpc', 'json-rpc'] as const) {
      const error = await rejection(connect({ url: server.url, ...auth, transport }))
      expect(error).toBeInstanceOf(XapiTransportError)
      expect(error).toMatchObject({ code: 'XAPI_CLIENT_TRANSPORT', status: 500 })
      expect(error.message).toMatch(
        /^HTTP 500 from http:\/\/127\.0\.0\.1:\d+\/(jsonrpc)? for session\.login_with_password \(text\/html\): Internal Error boom$/
      )
      expect(error.message).not.toContain('hunter2')
    }
  })

  it('treats a 500 carrying a valid XML-RPC success as an error', async () => {
    const server = await serve((req, res, body, entry) => {
      res.statusCode = 500
      xapiHandler(basic)(req, res, body, entry)
    })
    const error = await rejection(connect({ url: server.url, ...auth, transport: 'xml-rpc' }))
    expect(error).toMatchObject({ code: 'XAPI_CLIENT_TRANSPORT', status: 500 })
  })

  it('reports malformed XML as a protocol error', async () => {
    const server = await serve((_req, res) => {
      res.setHeader('content-type', 'text/xml')
      res.end('<?xml version="1.0"?><methodResponse><params><param><value><struct>')
    })
    const error = await rejection(connect({ url: server.url, ...auth, transport: 'xml-rpc' }))
    expect(error).toMatchObject({ code: 'XAPI_CLIENT_PROTOCOL' })
  })

  it('reports malformed JSON as a protocol error', async () => {
    const server = await serve((_req, res) => {
      res.setHeader('content-type', 'application/json')
      res.end('{"result": ')
    })
    const error = await rejection(connect({ url: server.url, ...auth, transport: 'json-rpc' }))
    expect(error).toMatchObject({ code: 'XAPI_CLIENT_PROTOCOL' })
  })

  it('auto falls back to XML-RPC when /jsonrpc answers 404 or text/xml, once for good', async () => {
    for (const status of [404, 200]) {
      const xapi = xapiHandler(basic)
      const server = await serve((req, res, body, entry) => {
        if (req.url === '/jsonrpc') {
          res.writeHead(status, { 'content-type': 'text/xml' })
          res.end()
        } else xapi(req, res, body, entry)
      })
      const client = await connect({ url: server.url, ...auth })
      expect(client.transport).toBe('xml-rpc')
      expect(await client.call('VM.get_all')).toEqual(['OpaqueRef:vm1'])
      await client.close()
      expect(server.requests.map((r) => `${r.path} ${r.rpc ?? ''}`.trim())).toEqual([
        '/jsonrpc',
        '/ session.login_with_password',
        '/ VM.get_all',
        '/ session.logout',
      ])
    }
  })

  it('auto falls back to XML-RPC when /jsonrpc hangs up without answering', async () => {
    const xapi = xapiHandler(basic)
    const server = await serve((req, res, body, entry) => {
      if (req.url === '/jsonrpc') req.socket.destroy()
      else xapi(req, res, body, entry)
    })
    const client = await connect({ url: server.url, ...auth })
    expect(client.transport).toBe('xml-rpc')
    expect(await client.call('VM.get_all')).toEqual(['OpaqueRef:vm1'])
    await client.close()
  })

  it('auto keeps JSON-RPC when the server speaks it, and sends version and originator', async () => {
    const server = await serve(xapiHandler(basic))
    const client = await connect({ url: server.url, ...auth })
    expect(client.transport).toBe('json-rpc')
    expect(server.requests[0]).toMatchObject({
      path: '/jsonrpc',
      rpc: 'session.login_with_password',
      params: ['root', 'hunter2', '1.1', 'xapi-ops'],
    })
    await client.close()
  })

  it('follows redirects for RPC calls', async () => {
    const target = await serve(xapiHandler(basic))
    const server = await serve((req, res) => {
      res.writeHead(307, { location: `${target.url}${req.url}` })
      res.end()
    })
    const client = await connect({ url: server.url, ...auth, transport: 'xml-rpc' })
    expect(await client.call('VM.get_all')).toEqual(['OpaqueRef:vm1'])
    await client.close()
    expect(target.requests.map((r) => r.rpc)).toEqual([
      'session.login_with_password',
      'VM.get_all',
      'session.logout',
    ])
  })
})

describe('JSON-RPC forms and connections', () => {
  it('reads JSON-RPC v1 answers (error as an array, null error on success)', async () => {
    const server = await serve((_req, res, body) => {
      const call = JSON.parse(body.toString()) as { method: string; id: number }
      res.setHeader('content-type', 'application/json; charset=utf-8')
      if (call.method === 'session.login_with_password') {
        res.end(JSON.stringify({ result: SESSION, error: null, id: call.id }))
      } else {
        res.end(
          JSON.stringify({
            result: null,
            error: ['VM_IS_TEMPLATE', 'OpaqueRef:t', 'start'],
            id: call.id,
          })
        )
      }
    })
    const client = await connect({ url: server.url, ...auth, transport: 'json-rpc' })
    await expect(client.call('VM.start', 'OpaqueRef:t', false, false)).rejects.toMatchObject({
      code: 'VM_IS_TEMPLATE',
      params: ['OpaqueRef:t', 'start'],
      method: 'VM.start',
    })
  })

  it('reuses one keep-alive connection for sequential calls', async () => {
    for (const transport of ['json-rpc', 'xml-rpc'] as const) {
      const server = await serve(xapiHandler(basic))
      const client = await connect({ url: server.url, ...auth, transport })
      for (let i = 0; i < 20; i++) await client.call('VM.get_all')
      expect(server.requests).toHaveLength(21)
      expect(server.connections).toBe(1)
      await client.close()
    }
  })
})

describe('failures on the way', () => {
  it('times a hung call out with XAPI_CLIENT_TIMEOUT', async () => {
    const server = await serve(() => {
      /* never answers */
    })
    const error = await rejection(connect({ url: server.url, ...auth, callTimeoutMs: 200 }))
    expect(error).toBeInstanceOf(XapiTimeoutError)
    expect(error).toMatchObject({ code: 'XAPI_CLIENT_TIMEOUT', timeoutMs: 200 })
    expect(error.message).toMatch(
      /session\.login_with_password timed out after 200 ms on http:\/\/127\.0\.0\.1:\d+/
    )
  })

  it('callWith timeoutMs and signal override per call', async () => {
    let hang = false
    const xapi = xapiHandler(basic)
    const server = await serve((req, res, body, entry) => {
      if (!hang) xapi(req, res, body, entry)
    })
    const client = await connect({ url: server.url, ...auth })
    hang = true
    await expect(client.callWith('VM.get_all', [], { timeoutMs: 100 })).rejects.toMatchObject({
      code: 'XAPI_CLIENT_TIMEOUT',
    })
    const ctrl = new AbortController()
    const pending = client.callWith('VM.get_all', [], { signal: ctrl.signal })
    ctrl.abort(new Error('stop'))
    await expect(pending).rejects.toThrow('stop')
    hang = false
    await client.close()
  })

  it('honours a signal before the call and while it waits for a concurrency slot', async () => {
    let hang = false
    const xapi = xapiHandler(basic)
    const server = await serve((req, res, body, entry) => {
      if (!hang) xapi(req, res, body, entry)
    })
    const client = await connect({ url: server.url, ...auth, callConcurrency: 1 })
    const aborted = AbortSignal.abort(new Error('before'))
    await expect(client.callWith('VM.get_all', [], { signal: aborted })).rejects.toThrow('before')
    hang = true
    const seen = server.requests.length
    const blocker = client.callWith('VM.get_all', [], { timeoutMs: 300 })
    const ctrl = new AbortController()
    const queued = client.callWith('VM.get_all', [], { signal: ctrl.signal })
    ctrl.abort(new Error('while queued'))
    await expect(queued).rejects.toThrow('while queued')
    await expect(blocker).rejects.toMatchObject({ code: 'XAPI_CLIENT_TIMEOUT' })
    // Only the blocker reached the server.
    expect(server.requests.length).toBe(seen + 1)
    hang = false
    await client.close()
  })

  it('refuses session management through call()', async () => {
    const client = createClient({ url: 'http://127.0.0.1:1', ...auth })
    for (const method of ['session.logout', 'session.login_with_password', 'VM.start; rm']) {
      await expect(client.call(method)).rejects.toMatchObject({
        code: 'XAPI_CLIENT_INVALID_CALL',
      })
    }
    await client.close()
  })

  it('explains an unreachable host', async () => {
    const port = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as net.AddressInfo).port
        s.close(() => resolve(p))
      })
    })
    const error = await rejection(connect({ url: `http://127.0.0.1:${port}`, ...auth }))
    expect(isXapiClientError(error, 'XAPI_CLIENT_TRANSPORT')).toBe(true)
    expect(error.message).toBe(
      `Cannot reach http://127.0.0.1:${port}/jsonrpc: connection refused: is XAPI listening there? (ECONNREFUSED)`
    )
    expect(error.cause).toMatchObject({ code: 'ECONNREFUSED' })
  })

  it('reports a dropped connection as a transport error', async () => {
    const server = await serve((req) => req.socket.destroy())
    const error = await rejection(connect({ url: server.url, ...auth }))
    expect(error).toMatchObject({ code: 'XAPI_CLIENT_TRANSPORT' })
    expect(error.message).toMatch(/dropped|ECONNRESET|socket hang up/)
  })
})

describe('sessions', () => {
  it('explains a wrong password without echoing it', async () => {
    const server = await serve(
      xapiHandler({
        'session.login_with_password': ([user]) => {
          throw failure('SESSION_AUTHENTICATION_FAILED', String(user), 'Authentication failure')
        },
      })
    )
    const error = await rejection(connect({ url: server.url, ...auth }))
    expect(isXapiError(error, 'SESSION_AUTHENTICATION_FAILED')).toBe(true)
    expect(error.message).toBe(
      `SESSION_AUTHENTICATION_FAILED(root, Authentication failure): wrong user name or password for ${server.url}`
    )
    expect(JSON.stringify((error as XapiError).call)).not.toContain('hunter2')
  })

  it('falls back to the two-parameter login on servers that only know it', async () => {
    const server = await serve(
      xapiHandler({
        ...basic,
        'session.login_with_password': (params) => {
          if (params.length !== 2)
            throw failure(
              'MESSAGE_PARAMETER_COUNT_MISMATCH',
              'session.login_with_password',
              '2',
              String(params.length)
            )
          return SESSION
        },
      })
    )
    const client = await connect({ url: server.url, ...auth })
    expect(await client.call('VM.get_all')).toEqual(['OpaqueRef:vm1'])
    await client.close()
  })

  it('shares one login between concurrent first calls and hides the session ref in errors', async () => {
    const server = await serve(
      xapiHandler({
        ...basic,
        'VM.get_record': ([session]) => {
          throw failure('HANDLE_INVALID', 'VM', String(session))
        },
      })
    )
    const client = createClient({ url: server.url, ...auth })
    await Promise.all([
      client.call('VM.get_all'),
      client.call('VM.get_all'),
      client.call('VM.get_all'),
    ])
    expect(server.requests.filter((r) => r.rpc === 'session.login_with_password')).toHaveLength(1)
    const error = await rejection(client.call('VM.get_record', 'OpaqueRef:x'))
    expect(error.message).toBe('HANDLE_INVALID(VM, ***)')
    expect(JSON.stringify(error)).not.toContain(SESSION)
    expect((error as XapiError).call).toMatchObject({
      method: 'VM.get_record',
      params: ['***', 'OpaqueRef:x'],
    })
    await client.close()
    await client.close()
    expect(server.requests.filter((r) => r.rpc === 'session.logout')).toHaveLength(1)
    await expect(client.call('VM.get_all')).rejects.toMatchObject({ code: 'XAPI_CLIENT_CLOSED' })
  })

  it('caps the number of calls in flight', async () => {
    let inFlight = 0
    let peak = 0
    const xapi = xapiHandler(basic)
    const server = await serve((req, res, body, entry) => {
      peak = Math.max(peak, ++inFlight)
      setTimeout(() => {
        inFlight--
        xapi(req, res, body, entry)
      }, 20)
    })
    const client = await connect({ url: server.url, ...auth, callConcurrency: 2 })
    peak = 0
    await Promise.all(Array.from({ length: 8 }, () => client.call('VM.get_all')))
    expect(peak).toBe(2)
    await client.close()
  })

  it('readOnly refuses anything but getters, event.from and system.*', async () => {
    const server = await serve(xapiHandler({ ...basic, 'VM.get_power_state': () => 'Running' }))
    const client = createClient({ url: server.url, ...auth, readOnly: true })
    expect(await client.call('VM.get_power_state', 'OpaqueRef:vm1')).toBe('Running')
    for (const method of ['VM.start', 'Async.VM.get_record', 'VM.set_name_label', 'task.create']) {
      await expect(client.call(method)).rejects.toMatchObject({ code: 'XAPI_CLIENT_READ_ONLY' })
    }
    await expect(client.callAsync('VM.clean_shutdown', ['OpaqueRef:vm1'])).rejects.toMatchObject({
      code: 'XAPI_CLIENT_READ_ONLY',
    })
    expect(server.requests.map((r) => r.rpc)).toEqual([
      'session.login_with_password',
      'VM.get_power_state',
    ])
    await client.close()
  })
})

describe('bodies', () => {
  it('reads large bodies with and without Content-Length, and refuses a truncated one', async () => {
    const big = Array.from({ length: 20_000 }, (_, i) => `OpaqueRef:vm-${i}`)
    for (const mode of ['length', 'chunked', 'short'] as const) {
      const xapi = xapiHandler({ ...basic, 'VM.get_all': () => big })
      const server = await serve((req, res, body, entry) => {
        if (entry.path !== '/jsonrpc' || !body.includes('VM.get_all'))
          return xapi(req, res, body, entry)
        const text = JSON.stringify({ jsonrpc: '2.0', result: big, id: 1 })
        res.setHeader('content-type', 'application/json')
        if (mode === 'chunked') {
          res.write(text.slice(0, 1000))
          res.end(text.slice(1000))
        } else if (mode === 'length') {
          res.setHeader('content-length', Buffer.byteLength(text))
          res.end(text)
        } else {
          res.setHeader('content-length', Buffer.byteLength(text) + 10)
          res.write(text)
          setTimeout(() => res.socket?.destroy(), 20)
        }
      })
      const client = await connect({ url: server.url, ...auth })
      if (mode === 'short') {
        await expect(client.call('VM.get_all')).rejects.toMatchObject({
          code: 'XAPI_CLIENT_TRANSPORT',
        })
      } else {
        expect(await client.call('VM.get_all')).toEqual(big)
      }
      await client.close()
    }
  })
})
