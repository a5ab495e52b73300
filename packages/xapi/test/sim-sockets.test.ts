import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startSimulator } from '@xapi-ops/xapi-sim'
import { describe, expect, it } from 'vitest'
import { connect } from '../src/index.js'

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
      // Pinned, starting on a supporter: HOST_IS_SLAVE moves the client, the pin still applies.
      await using xapi = await connect({
        ...opts,
        url: pool.hosts[1]!.url,
        fingerprint: sim.fingerprint!,
      })
      expect(xapi.url).toBe(pool.masterUrl)
      expect(await xapi.call('pool.get_all')).toHaveLength(1)
    } finally {
      await sim.close()
    }
  })
})
