import http, { type IncomingHttpHeaders } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startSimulator, type Simulator } from '../src/index.js'
import { parseMethodCall } from '../src/wire/xml-rpc.js'
import { decodeResponse, failure, jsonCall, login, methodCall, ok, post } from './rpc.js'

let sim: Simulator
let url: string
let slaveUrl: string
let session: string

beforeAll(async () => {
  sim = await startSimulator({ seed: 'small', timeScale: 0.001 })
  url = sim.pools[0]!.masterUrl
  slaveUrl = sim.pools[0]!.hosts[1]!.url
  session = await login(url, sim.user, sim.password)
})
afterAll(() => sim.close())

const ENVELOPE_HEAD = '<?xml version="1.0"?><methodResponse><params><param><value><struct>'
const ENVELOPE_TAIL = '</struct></value></param></params></methodResponse>'

describe('XML-RPC envelope', () => {
  it('answers a login with the exact xapi success envelope, untyped ref, content-type text/xml', async () => {
    const r = await post(
      url,
      '/',
      methodCall('session.login_with_password', [sim.user, sim.password])
    )
    expect(r.status).toBe(200)
    expect(r.type).toBe('text/xml')
    expect(r.headers['access-control-allow-origin']).toBe('*')
    expect(r.headers['access-control-allow-headers']).toBe('X-Requested-With')
    expect(r.body).toMatch(
      new RegExp(
        `^${escape(ENVELOPE_HEAD)}<member><name>Status</name><value>Success</value></member>` +
          `<member><name>Value</name><value>OpaqueRef:[0-9a-f-]{36}</value></member>${escape(ENVELOPE_TAIL)}$`
      )
    )
  })

  it('answers a failure with Status/ErrorDescription, never a fault', async () => {
    const r = await post(url, '/', methodCall('VM.get_record', [session, 'OpaqueRef:nope']))
    expect(r.status).toBe(200)
    expect(r.body).toBe(
      `${ENVELOPE_HEAD}<member><name>Status</name><value>Failure</value></member>` +
        '<member><name>ErrorDescription</name><value><array><data><value>HANDLE_INVALID</value>' +
        `<value>VM</value><value>OpaqueRef:nope</value></data></array></value></member>${ENVELOPE_TAIL}`
    )
    expect(r.body).not.toContain('fault')
  })

  it('answers a CORS preflight as Http_svr.respond_to_options', async () => {
    const headers = await new Promise<IncomingHttpHeaders>((resolve, reject) => {
      const req = http.request(
        new URL('/jsonrpc', url),
        { method: 'OPTIONS', headers: { 'access-control-request-headers': 'content-type' } },
        (res) => {
          res.resume()
          resolve(res.headers)
        }
      )
      req.on('error', reject)
      req.end()
    })
    expect(headers).toMatchObject({
      'access-control-allow-origin': '*',
      'access-control-allow-headers': 'content-type, X-Requested-With',
      'access-control-allow-methods': 'PUT',
    })
  })

  it('serves /RPC2 and /xmlrpc the same way', async () => {
    for (const path of ['/RPC2', '/xmlrpc']) {
      const r = await post(url, path, methodCall('pool.get_all', [session]))
      expect(r.type).toBe('text/xml')
      expect(decodeResponse(r.body).Value).toHaveLength(1)
    }
  })

  it('encodes ints untyped, booleans as <boolean>1</boolean>, dates with Z, floats as <double>', async () => {
    const [vm] = await ok(url, 'VM.get_by_name_label', session, 'web-01')
    const r = await post(url, '/', methodCall('VM.get_record', [session, vm]))
    expect(r.body).toContain('<member><name>domid</name><value>1</value></member>')
    expect(r.body).toContain(
      '<member><name>is_a_template</name><value><boolean>0</boolean></value></member>'
    )
    expect(r.body).toMatch(
      /<member><name>snapshot_time<\/name><value><dateTime.iso8601>19700101T00:00:00Z<\/dateTime.iso8601><\/value><\/member>/
    )
    expect(r.body).toContain(
      '<member><name>HVM_shadow_multiplier</name><value><double>1</double></value></member>'
    )
    expect(r.body).toContain('<member><name>name_description</name><value></value></member>')
    const r2 = await post(
      url,
      '/',
      methodCall('VM.get_is_a_template', [
        session,
        (await ok(url, 'VM.get_by_name_label', session, 'Debian 12 template'))[0],
      ])
    )
    expect(r2.body).toContain('<value><boolean>1</boolean></value>')
  })

  it('sends valid_ref_counts as <i4> and a zero-padded token', async () => {
    const r = await post(url, '/', methodCall('event.from', [session, ['task'], '', 0.1]))
    expect(r.body).toMatch(/<member><name>valid_ref_counts<\/name><value><struct><member>/)
    expect(r.body).toMatch(/<member><name>task<\/name><value><i4>\d+<\/i4><\/value><\/member>/)
    expect(r.body).toMatch(/<member><name>vm<\/name><value><i4>\d+<\/i4><\/value><\/member>/)
    expect(decodeResponse(r.body).Value.token).toMatch(/^\d{20},\d{20}$/)
  })

  it('accepts typed and untyped params, CDATA, entities, whitespace and <params/>', async () => {
    const body =
      '<?xml version="1.0"?>\n<methodCall>\n  <methodName>VM.get_by_name_label</methodName>\n  <params>\n' +
      `    <param><value><string>${session}</string></value></param>\n` +
      '    <param><value><![CDATA[web-01]]></value></param>\n  </params>\n</methodCall>\n'
    expect(decodeResponse((await post(url, '/', body)).body).Value).toHaveLength(1)
    const listed = await post(
      url,
      '/',
      '<methodCall><methodName>system.listMethods</methodName><params/></methodCall>'
    )
    expect(listed.body).toContain('<value>VM.get_all_records</value>')
  })
})

describe('XAPI errors', () => {
  it('MESSAGE_METHOD_UNKNOWN [method] (named without Async., as xapi does)', async () => {
    expect(await failure(url, 'VM.frobnicate', session)).toEqual([
      'MESSAGE_METHOD_UNKNOWN',
      'VM.frobnicate',
    ])
    expect(await failure(url, 'Async.VM.frobnicate', session, 'x')).toEqual([
      'MESSAGE_METHOD_UNKNOWN',
      'VM.frobnicate',
    ])
  })

  it('alternative wire names <Class>_<message> (gen_server.ml) work too', async () => {
    expect(await ok(url, 'VM_get_all', session)).toEqual(await ok(url, 'VM.get_all', session))
    const [vm] = await ok(url, 'VM.get_all', session)
    const metrics = await ok(url, 'VM_get_metrics', session, vm)
    expect((await ok(url, 'VM_metrics_get_record', session, metrics)).uuid).toBeTruthy()
    expect(await failure(url, 'VM_get_record', session)).toEqual([
      'MESSAGE_PARAMETER_COUNT_MISMATCH',
      'VM_get_record',
      '1',
      '0',
    ])
  })

  it('MESSAGE_PARAMETER_COUNT_MISMATCH [method, mandatory, received], session not counted', async () => {
    expect(await failure(url, 'VM.get_record', session)).toEqual([
      'MESSAGE_PARAMETER_COUNT_MISMATCH',
      'VM.get_record',
      '1',
      '0',
    ])
    expect(await failure(url, 'Async.VM.start', session, 'OpaqueRef:x')).toEqual([
      'MESSAGE_PARAMETER_COUNT_MISMATCH',
      'VM.start',
      '3',
      '1',
    ])
    expect(await failure(url, 'session.login_with_password', 'root')).toEqual([
      'MESSAGE_PARAMETER_COUNT_MISMATCH',
      'session.login_with_password',
      '2',
      '1',
    ])
    expect(await failure(url, 'pool.get_all', session, 'extra')).toEqual([
      'MESSAGE_PARAMETER_COUNT_MISMATCH',
      'pool.get_all',
      '0',
      '1',
    ])
  })

  it('accepts the documented shorter arities', async () => {
    const [host] = await ok(url, 'host.get_all', session)
    await ok(url, 'host.disable', session, host)
    await ok(url, 'host.disable', session, host, true)
    await ok(url, 'host.enable', session, host)
    expect(await ok(url, 'session.login_with_password', sim.user, sim.password)).toMatch(
      /^OpaqueRef:/
    )
    expect(await ok(url, 'session.login_with_password', sim.user, sim.password, '1.1')).toMatch(
      /^OpaqueRef:/
    )
  })

  it('HANDLE_INVALID [class, ref] and UUID_INVALID [class, uuid]', async () => {
    expect(await failure(url, 'SR.get_name_label', session, 'OpaqueRef:gone')).toEqual([
      'HANDLE_INVALID',
      'SR',
      'OpaqueRef:gone',
    ])
    expect(await failure(url, 'VM.get_by_uuid', session, 'not-a-uuid')).toEqual([
      'UUID_INVALID',
      'VM',
      'not-a-uuid',
    ])
    const [pool] = await ok(url, 'pool.get_all', session)
    expect(await failure(url, 'VM.get_record', session, pool)).toEqual([
      'HANDLE_INVALID',
      'VM',
      pool,
    ])
  })

  it('the local unix socket trusts its caller: any password logs in (xapi Context.preauth)', async () => {
    const { mkdtemp, rm } = await import('node:fs/promises')
    const { tmpdir } = await import('node:os')
    const { join } = await import('node:path')
    const dir = await mkdtemp(join(tmpdir(), 'xapi-sim-sock-'))
    try {
      const socketPath = join(dir, 'xapi')
      await using local = await startSimulator({ seed: 'small', timeScale: 0.001, socketPath })
      const viaSocket = (body: string) =>
        new Promise<string>((resolve, reject) => {
          const req = http.request({ socketPath, path: '/', method: 'POST' }, (res) => {
            let t = ''
            res.on('data', (d) => (t += d))
            res.on('end', () => resolve(t))
          })
          req.on('error', reject)
          req.end(body)
        })
      const answer = decodeResponse(
        await viaSocket(methodCall('session.login_with_password', ['root', '']))
      )
      expect(answer.Status).toBe('Success')
      expect(
        decodeResponse(await viaSocket(methodCall('pool.get_all', [answer.Value]))).Value
      ).toHaveLength(1)
      // over TCP the password is still checked
      expect(
        (await failure(local.pools[0]!.masterUrl, 'session.login_with_password', 'root', ''))[0]
      ).toBe('SESSION_AUTHENTICATION_FAILED')
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('SESSION_INVALID [ref] and SESSION_AUTHENTICATION_FAILED [user, msg]', async () => {
    expect(await failure(url, 'VM.get_all', 'OpaqueRef:bogus')).toEqual([
      'SESSION_INVALID',
      'OpaqueRef:bogus',
    ])
    const s = await login(url, sim.user, sim.password)
    await ok(url, 'session.logout', s)
    expect(await failure(url, 'VM.get_all', s)).toEqual(['SESSION_INVALID', s])
    expect(await failure(url, 'session.login_with_password', 'root', 'wrong')).toEqual([
      'SESSION_AUTHENTICATION_FAILED',
      'root',
      'Authentication failure',
    ])
  })

  it('HOST_IS_SLAVE [127.0.0.1:<master port>] for login and calls on a supporter', async () => {
    const master = new URL(url).host
    expect(await failure(slaveUrl, 'session.login_with_password', sim.user, sim.password)).toEqual([
      'HOST_IS_SLAVE',
      master,
    ])
    expect(await failure(slaveUrl, 'VM.get_all', session)).toEqual(['HOST_IS_SLAVE', master])
    // the session is checked first (Session_check.check): an unknown one is SESSION_INVALID
    expect(await failure(slaveUrl, 'VM.get_all', 'OpaqueRef:gone')).toEqual([
      'SESSION_INVALID',
      'OpaqueRef:gone',
    ])
  })

  it('checks the session of an unknown call before MESSAGE_METHOD_UNKNOWN (xapi extensions)', async () => {
    expect(await failure(url, 'VM.frobnicate', 'OpaqueRef:gone')).toEqual([
      'SESSION_INVALID',
      'OpaqueRef:gone',
    ])
    expect(await failure(url, 'Async.VM.frobnicate', 'OpaqueRef:gone', 'x')).toEqual([
      'SESSION_INVALID',
      'OpaqueRef:gone',
    ])
    expect(await failure(url, 'VM.frobnicate')).toEqual(['MESSAGE_METHOD_UNKNOWN', 'VM.frobnicate'])
    expect(await failure(slaveUrl, 'VM.frobnicate', session)).toEqual([
      'HOST_IS_SLAVE',
      new URL(url).host,
    ])
  })

  it('Async. on a message without an async mode: a Fault, after arity and session checks', async () => {
    const [vm] = await ok(url, 'VM.get_all', session)
    expect(await failure(url, 'Async.VM.get_record', session, vm)).toEqual([
      'Fault',
      'No async mode for this operation (rpc: VM.get_record)',
    ])
    expect(await failure(url, 'Async.VM.get_record', 'OpaqueRef:gone', vm)).toEqual([
      'SESSION_INVALID',
      'OpaqueRef:gone',
    ])
    expect((await failure(url, 'Async.VM.get_record', session))[0]).toBe(
      'MESSAGE_PARAMETER_COUNT_MISMATCH'
    )
    // custom messages default to having an async mode
    const t = await ok(url, 'Async.VM.assert_operation_valid', session, vm, 'snapshot')
    expect(t).toMatch(/^OpaqueRef:/)
  })

  it('system.listMethods: any parameters, no session check, the bare array over XML-RPC', async () => {
    for (const params of [[], [session], ['OpaqueRef:gone', 'x']]) {
      const r = await post(url, '/', methodCall('system.listMethods', params))
      expect(r.body).toMatch(
        /^<\?xml version="1.0"\?><methodResponse><params><param><value><array><data><value>/
      )
      expect(r.body).not.toContain('Status')
      const list = parseMethodCall(
        r.body
          .replace('<methodResponse>', '<methodCall><methodName>x</methodName>')
          .replace('</methodResponse>', '</methodCall>')
      ).params[0]
      expect(list).toContain('VM.get_all_records')
    }
    const j = await jsonCall(url, {
      jsonrpc: '2.0',
      method: 'system.listMethods',
      params: [session],
      id: 1,
    })
    expect(j.json.result).toContain('VM.get_all_records')
    expect(await ok(url, 'system.isAlive:probe', 'hello')).toBe('hello')
  })

  it('answers malformed XML and a missing <params> with HTTP 500, and keeps serving', async () => {
    for (const body of [
      '<methodCall><methodName>VM.get_all',
      'not xml at all',
      '<methodCall><methodName>VM.get_all</methodName></methodCall>',
      '',
    ]) {
      const r = await post(url, '/', body)
      expect(r.status).toBe(500)
    }
    expect(await ok(url, 'pool.get_all', session)).toHaveLength(1)
  })

  it('FIELD_TYPE_ERROR for a badly typed setter value', async () => {
    const [vm] = await ok(url, 'VM.get_by_name_label', session, 'build-01')
    expect(await failure(url, 'VM.set_order', session, vm, 'abc')).toEqual([
      'FIELD_TYPE_ERROR',
      'order',
    ])
  })
})

describe('JSON-RPC on /jsonrpc', () => {
  it('v2: result/error {code: 1, message, data}, application/json', async () => {
    const r = await jsonCall(url, {
      jsonrpc: '2.0',
      method: 'pool.get_all',
      params: [session],
      id: 7,
    })
    expect(r.type).toBe('application/json')
    expect(r.json).toEqual({
      jsonrpc: '2.0',
      result: [expect.stringMatching(/^OpaqueRef:/)],
      id: 7,
    })
    const e = await jsonCall(url, {
      jsonrpc: '2.0',
      method: 'VM.get_record',
      params: [session, 'OpaqueRef:x'],
      id: 'a',
    })
    expect(e.json).toEqual({
      jsonrpc: '2.0',
      error: { code: 1, message: 'HANDLE_INVALID', data: ['VM', 'OpaqueRef:x'] },
      id: 'a',
    })
  })

  it('v1: {result, error: [code, ...params], id}; sessions shared with XML-RPC', async () => {
    const r = await jsonCall(url, {
      method: 'session.login_with_password',
      params: [sim.user, sim.password],
      id: 1,
    })
    expect(r.json.error).toBeNull()
    const s = r.json.result as string
    expect(await ok(url, 'pool.get_all', s)).toHaveLength(1)
    const e = await jsonCall(url, { method: 'VM.nope', params: [s], id: 2 })
    expect(e.json).toEqual({ result: null, error: ['MESSAGE_METHOD_UNKNOWN', 'VM.nope'], id: 2 })
  })

  it('ints as numbers, dates as xapi strings', async () => {
    const [vm] = await ok(url, 'VM.get_by_name_label', session, 'web-01')
    const r = await jsonCall(url, {
      jsonrpc: '2.0',
      method: 'VM.get_record',
      params: [session, vm],
      id: 1,
    })
    expect(r.json.result.memory_static_max).toBe(1073741824)
    expect(r.json.result.snapshot_time).toBe('19700101T00:00:00Z')
    expect(r.json.result.is_a_template).toBe(false)
  })

  it('requests ocaml-rpc refuses (no id, null id, v1 without params, bad jsonrpc) → HTTP 500', async () => {
    for (const body of [
      { jsonrpc: '2.0', method: 'pool.get_all', params: [session] },
      { jsonrpc: '2.0', method: 'pool.get_all', params: [session], id: null },
      { jsonrpc: '2.0', method: 'pool.get_all', params: [session], id: 1.5 },
      { method: 'pool.get_all', id: 1 },
      { jsonrpc: '1.0', method: 'pool.get_all', params: [session], id: 1 },
      { jsonrpc: '2.0', method: 'pool.get_all', params: 'x', id: 1 },
    ]) {
      expect((await jsonCall(url, body)).status, JSON.stringify(body)).toBe(500)
    }
    // v2 without params is a call with none
    expect(
      (await jsonCall(url, { jsonrpc: '2.0', method: 'pool.get_all', id: 'x' })).json.error
    ).toEqual({
      code: 1,
      message: 'MESSAGE_PARAMETER_COUNT_MISMATCH',
      data: ['pool.get_all', '0', '-1'],
    })
  })

  it('malformed JSON → HTTP 500, and the server keeps serving', async () => {
    const r = await post(url, '/jsonrpc', '{"method": ', 'application/json')
    expect(r.status).toBe(500)
    expect(
      (await jsonCall(url, { method: 'pool.get_all', params: [session], id: 1 })).json.result
    ).toHaveLength(1)
  })
})

describe('TLS', () => {
  it('serves HTTPS with a self-signed certificate whose SHA-256 fingerprint is reported', async () => {
    const { X509Certificate } = await import('node:crypto')
    await using tsim = await startSimulator({ seed: 'small', tls: true, timeScale: 0.001 })
    expect(tsim.pools[0]!.masterUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/)
    expect(new X509Certificate(tsim.certificate!).fingerprint256).toBe(tsim.fingerprint)
    const s = await login(tsim.pools[0]!.masterUrl, tsim.user, tsim.password)
    expect(await ok(tsim.pools[0]!.masterUrl, 'pool.get_all', s)).toHaveLength(1)
    // HOST_IS_SLAVE carries the master's thumbprint when asked (xapi since Dec 2023)
    const slave = tsim.pools[0]!.hosts[1]!.url
    const body = methodCall('pool.get_all', [s])
    const r = await post(slave, '/', body, 'text/xml', {
      'x-xenapi-request-host-certificate-thumbprint': 'sha-256:master',
    })
    expect(decodeResponse(r.body).ErrorDescription?.[0]).toBe('HOST_IS_SLAVE')
    expect(r.headers['x-xenapi-response-host-certificate-thumbprint']).toBe(tsim.fingerprint)
    expect(
      (await post(slave, '/', body)).headers['x-xenapi-response-host-certificate-thumbprint']
    ).toBeUndefined()
  })
})

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}
