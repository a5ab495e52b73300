import { X509Certificate } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import https from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startSimulator } from '@xapi-ops/xapi-sim'
import { describe, expect, it } from 'vitest'
import { connect, type XapiClient } from '../src/index.js'

/** GET `url` through the client's agent (its TLS policy): the status, or the TLS refusal. */
function getThrough(xapi: XapiClient, url: string): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { agent: xapi.agentFor(new URL(url)) }, (res) => {
      res.resume()
      resolve(res.statusCode)
    })
    req.on('error', reject)
  })
}

describe('unix socket', () => {
  it('talks XAPI over unix:/path with both transports', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xapi-sock-'))
    const socketPath = join(dir, 'xapi')
    const sim = await startSimulator({ seed: 'small', timeScale: 0.01, socketPath })
    try {
      for (const transport of ['auto', 'xml-rpc'] as const) {
        await using xapi = await connect({
          url: `unix:${socketPath}`,
          user: sim.user,
          password: sim.password,
          transport,
        })
        expect(xapi.url).toBe(`unix:${socketPath}`)
        expect(xapi.hostUrl().protocol).toBe('unix:')
        expect(await xapi.call('pool.get_all')).toHaveLength(1)
      }
    } finally {
      await sim.close()
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('explains a missing socket', async () => {
    const error = (await connect({
      url: 'unix:/nonexistent/xapi.sock',
      user: 'root',
      password: 'x',
    }).catch((e: unknown) => e)) as Error
    expect(error).toMatchObject({ code: 'XAPI_CLIENT_TRANSPORT' })
    expect(error.message).toMatch(
      /^Cannot reach unix:\/nonexistent\/xapi\.sock \(\/jsonrpc\): socket not found \(ENOENT\)$/
    )
  })
})

describe('simulator over TLS', () => {
  it('pinned works, unpinned self-signed and a wrong pin are refused', async () => {
    const sim = await startSimulator({ seed: 'small', timeScale: 0.01, tls: true })
    try {
      const pool = sim.pools[0]!
      const opts = { url: pool.masterUrl, user: sim.user, password: sim.password }
      expect(opts.url).toMatch(/^https:/)
      await expect(connect(opts)).rejects.toMatchObject({ code: 'XAPI_CLIENT_TLS' })
      await expect(connect({ ...opts, fingerprint: 'AB'.repeat(32) })).rejects.toMatchObject({
        code: 'XAPI_CLIENT_TLS_PIN_MISMATCH',
      })
      expect(sim.calls).toHaveLength(0)
      // Each host has its own certificate: the master's pin does not cover a supporter.
      const supporter = pool.hosts[1]!
      expect(supporter.fingerprint).toBeDefined()
      expect(supporter.fingerprint).not.toBe(sim.fingerprint)
      await expect(
        connect({ ...opts, url: supporter.url, fingerprint: sim.fingerprint! })
      ).rejects.toMatchObject({ code: 'XAPI_CLIENT_TLS_PIN_MISMATCH' })
      // Pinned on a supporter: HOST_IS_SLAVE moves the client to the master, whose thumbprint
      // the pinned supporter vouched for.
      await using xapi = await connect({
        ...opts,
        url: supporter.url,
        fingerprint: supporter.fingerprint!,
      })
      expect(xapi.url).toBe(pool.masterUrl)
      expect(await xapi.call('pool.get_all')).toHaveLength(1)
      // The master reports every host's certificate (host.get_server_certificate): learnt once.
      const pems = await Promise.all(
        pool.hosts.map((h) => xapi.call<string>('host.get_server_certificate', h.ref))
      )
      expect(pems.map((pem) => new X509Certificate(pem).fingerprint256)).toEqual(
        pool.hosts.map((h) => h.fingerprint)
      )
      expect(await xapi.trustPoolCertificates()).toBe(true)
      // Concurrent callers share one lookup: 1 host.get_all, one get_server_certificate per host.
      const before = sim.calls.length
      expect(
        await Promise.all([xapi.trustPoolCertificates(), xapi.trustPoolCertificates()])
      ).toEqual([true, true])
      expect(
        sim.calls
          .slice(before)
          .map((c) => c.method)
          .sort()
      ).toEqual(
        [
          'host.get_all',
          ...pool.hosts.flatMap(() => ['host.get_address', 'host.get_server_certificate']),
        ].sort()
      )
      // Learnt, the supporter's certificate is accepted on its address (the sim's: 127.0.0.1).
      expect(await getThrough(xapi, supporter.url)).toBeTypeOf('number')
    } finally {
      await sim.close()
    }
  })

  it("a pool member's certificate is accepted on that member's address only", async () => {
    const sim = await startSimulator({ seed: 'small', timeScale: 0.01, tls: true })
    try {
      const pool = sim.pools[0]!
      const supporter = pool.hosts[1]!
      // The master reports the supporter at another address than the one it is reached on.
      sim.db.pool(pool.name).update(supporter.ref, { address: '192.0.2.7' })
      await using xapi = await connect({
        url: pool.masterUrl,
        user: sim.user,
        password: sim.password,
        fingerprint: sim.fingerprint!,
      })
      expect(await xapi.trustPoolCertificates()).toBe(true)
      await expect(getThrough(xapi, supporter.url)).rejects.toMatchObject({
        code: 'XAPI_CLIENT_TLS_PIN_MISMATCH',
      })
    } finally {
      await sim.close()
    }
  })
})
