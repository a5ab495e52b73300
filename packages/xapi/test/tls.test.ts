import https from 'node:https'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { XapiTlsError, connect, createClient } from '../src/index.js'
import {
  failure,
  makeCertificate,
  startServer,
  xapiHandler,
  type TestServer,
} from './helpers/servers.js'

const auth = { user: 'root', password: 'hunter2' }
const methods = {
  'session.login_with_password': () => 'OpaqueRef:s1',
  'session.logout': () => '',
  'VM.get_all': () => [],
}

let certA: ReturnType<typeof makeCertificate>
let certB: ReturnType<typeof makeCertificate>
let master: TestServer
let slave: TestServer
let vouchingSlave: TestServer

beforeAll(async () => {
  certA = makeCertificate()
  certB = makeCertificate()
  master = await startServer(xapiHandler(methods), certB)
  // A supporter with its own certificate that sends every login to the master.
  slave = await startServer(
    xapiHandler({
      'session.login_with_password': () => {
        throw failure('HOST_IS_SLAVE', `127.0.0.1:${master.port}`)
      },
    }),
    certA
  )
  // A supporter that also sends the master's thumbprint when asked, as xapi does since Dec 2023.
  vouchingSlave = await startServer((req, res, body, entry) => {
    const asked = req.headers['x-xenapi-request-host-certificate-thumbprint'] === 'sha-256:master'
    if (asked) res.setHeader('x-xenapi-response-host-certificate-thumbprint', certB.fingerprint)
    xapiHandler({
      'session.login_with_password': () => {
        throw failure('HOST_IS_SLAVE', `127.0.0.1:${master.port}`)
      },
    })(req, res, body, entry)
  }, certA)
})
afterAll(async () => {
  await master?.close()
  await slave?.close()
  await vouchingSlave?.close()
})

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p
  } catch (e) {
    return e as Error
  }
  throw new Error('expected a rejection')
}

describe('TLS', () => {
  it('refuses an unpinned self-signed certificate, naming its fingerprint, before sending anything', async () => {
    const before = master.requests.length
    const error = await rejection(connect({ url: master.url, ...auth }))
    expect(error).toBeInstanceOf(XapiTlsError)
    expect(error).toMatchObject({ code: 'XAPI_CLIENT_TLS', fingerprint: certB.fingerprint })
    expect(error.message).toMatch(/is not trusted \(.*SELF_SIGNED.*\); its SHA-256 fingerprint is /)
    expect(error.message).toContain(certB.fingerprint)
    expect(master.requests.length).toBe(before)
  })

  it('accepts a pinned certificate (colons optional, any case)', async () => {
    const fingerprint = certB.fingerprint.replace(/:/g, '').toLowerCase()
    const client = await connect({ url: master.url, ...auth, fingerprint })
    expect(await client.call('VM.get_all')).toEqual([])
    await client.close()
  })

  it('refuses a wrong pin without sending the request', async () => {
    const before = master.requests.length
    const error = await rejection(
      connect({ url: master.url, ...auth, fingerprint: certA.fingerprint })
    )
    expect(error).toMatchObject({
      code: 'XAPI_CLIENT_TLS_PIN_MISMATCH',
      fingerprint: certB.fingerprint,
    })
    expect(error.message).toContain(`expected ${certA.fingerprint}, got ${certB.fingerprint}`)
    expect(master.requests.length).toBe(before)
  })

  it('trusts a certificate given as `ca`, and anything with allowUnauthorized', async () => {
    for (const extra of [{ ca: certB.cert }, { allowUnauthorized: true }]) {
      const client = await connect({ url: master.url, ...auth, ...extra })
      expect(await client.call('VM.get_all')).toEqual([])
      await client.close()
    }
  })

  it('keeps enforcing the pin after HOST_IS_SLAVE moves the client to another host', async () => {
    const before = master.requests.length
    const error = await rejection(
      connect({ url: slave.url, ...auth, fingerprint: certA.fingerprint })
    )
    expect(error).toMatchObject({ code: 'XAPI_CLIENT_TLS_PIN_MISMATCH' })
    expect(error.message).toContain(`127.0.0.1:${master.port}`)
    expect(master.requests.length).toBe(before)
    expect(slave.requests.map((r) => r.rpc)).toContain('session.login_with_password')
  })

  it("extends the pin to the master's thumbprint vouched for by the pinned supporter", async () => {
    const client = await connect({
      url: vouchingSlave.url,
      ...auth,
      fingerprint: certA.fingerprint,
    })
    expect(client.url).toBe(`https://127.0.0.1:${master.port}`)
    expect(await client.call('VM.get_all')).toEqual([])
    await client.close()
    // Without a pin nothing is asked (and nothing would be trusted).
    await expect(
      connect({ url: vouchingSlave.url, ...auth, ca: certA.cert })
    ).rejects.toMatchObject({
      code: 'XAPI_CLIENT_TLS',
    })
  })

  it('follows HOST_IS_SLAVE when both certificates are trusted', async () => {
    const client = await connect({
      url: slave.url,
      ...auth,
      ca: [certA.cert, certB.cert].join('\n'),
    })
    expect(client.url).toBe(`https://127.0.0.1:${master.port}`)
    expect(await client.call('VM.get_all')).toEqual([])
    await client.close()
  })

  it('agentFor applies the pin to any pool member URL', async () => {
    const client = createClient({ url: slave.url, ...auth, fingerprint: certA.fingerprint })
    const url = new URL(`${master.url}/export`)
    const error = await new Promise<Error>((resolve) => {
      https
        .get(url, { agent: client.agentFor(url) as https.Agent }, () =>
          resolve(new Error('answered'))
        )
        .on('error', resolve)
    })
    expect(error).toMatchObject({ code: 'XAPI_CLIENT_TLS_PIN_MISMATCH' })
    await client.close()
  })
})
