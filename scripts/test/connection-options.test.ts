import { mkdtemp, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import yargs from 'yargs'
import {
  addConnectionOptions,
  addSharedTlsOptions,
  connectionOptionNames,
  normalizeFingerprint,
  resolveConnection,
  validateUrl,
} from '../src/lib/connection-options.js'
import { UsageError } from '../src/lib/errors.js'

let dir: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'conn-opts-'))
})

const io = { stdin: new PassThrough(), stderr: new PassThrough() }
const parse = (args: string[], prefix?: string) =>
  addConnectionOptions(yargs(args).strict().fail(false).exitProcess(false), { prefix }).parseAsync()
const noSocket = { XAPI_OPS_DOM0_SOCKET: '/nonexistent/xapi' }

describe('connectionOptionNames', () => {
  it('derives prefixed option and variable names', () => {
    expect(connectionOptionNames('from')).toMatchObject({
      url: 'from-url',
      passwordFile: 'from-password-file',
      envUrl: 'XAPI_FROM_URL',
      envPassword: 'XAPI_FROM_PASSWORD',
    })
    expect(connectionOptionNames()).toMatchObject({ url: 'url', envUser: 'XAPI_USER' })
  })
})

describe('resolveConnection', () => {
  it('takes URL, user and password from the environment, user defaulting to root', async () => {
    const env = { ...noSocket, XAPI_URL: 'https://pool', XAPI_PASSWORD: 's3cret' }
    await expect(resolveConnection(await parse([]), { env, ...io })).resolves.toEqual({
      url: 'https://pool',
      user: 'root',
      password: 's3cret',
      ca: undefined,
      fingerprint: undefined,
      insecure: false,
      localSocket: false,
    })
  })

  it('prefers arguments over the environment and reads --password-file and --ca', async () => {
    const file = join(dir, 'pw')
    await writeFile(file, 'from-file\nignored\n')
    const ca = join(dir, 'ca.pem')
    await writeFile(ca, '-----BEGIN CERTIFICATE-----\n')
    const env = { ...noSocket, XAPI_URL: 'https://env', XAPI_USER: 'u', XAPI_PASSWORD: 'env' }
    const argv = await parse([
      '--url',
      'http://arg',
      '--user',
      'admin',
      '--password-file',
      file,
      '--ca',
      ca,
    ])
    await expect(resolveConnection(argv, { env, ...io })).resolves.toMatchObject({
      url: 'http://arg',
      user: 'admin',
      password: 'from-file',
      ca: '-----BEGIN CERTIFICATE-----\n',
    })
  })

  it('builds the prefixed variant from the same code', async () => {
    const env = { XAPI_FROM_URL: 'https://a', XAPI_FROM_PASSWORD: 'pa', XAPI_TO_URL: 'https://b' }
    const argv = await parse(['--from-user', 'ops'], 'from')
    await expect(resolveConnection(argv, { env, prefix: 'from', ...io })).resolves.toMatchObject({
      url: 'https://a',
      user: 'ops',
      password: 'pa',
    })
  })

  describe('two pools (vm-migrate): shared --ca and --insecure', () => {
    const parseTwo = (args: string[]) =>
      addSharedTlsOptions(
        addConnectionOptions(
          addConnectionOptions(yargs(args).strict().fail(false).exitProcess(false), {
            prefix: 'from',
          }),
          { prefix: 'to' }
        )
      ).parseAsync()
    const env = {
      XAPI_FROM_URL: 'https://a',
      XAPI_TO_URL: 'https://b',
      XAPI_FROM_PASSWORD: 'p',
      XAPI_TO_PASSWORD: 'p',
    }
    const side = async (args: string[], prefix: string) =>
      resolveConnection(await parseTwo(args), { env, prefix, sharedTls: true, ...io })

    it("--ca is the CA of both pools, a side's own --<side>-ca wins for that side", async () => {
      const shared = join(dir, 'shared.pem')
      const own = join(dir, 'own.pem')
      await writeFile(shared, 'SHARED')
      await writeFile(own, 'OWN')
      expect(await side(['--ca', shared], 'from')).toMatchObject({ ca: 'SHARED', insecure: false })
      expect(await side(['--ca', shared], 'to')).toMatchObject({ ca: 'SHARED' })
      expect(await side(['--ca', shared, '--to-ca', own], 'to')).toMatchObject({ ca: 'OWN' })
      expect(await side(['--ca', shared, '--to-ca', own], 'from')).toMatchObject({ ca: 'SHARED' })
      await expect(side(['--ca', join(dir, 'missing.pem')], 'to')).rejects.toThrow(
        /cannot read --ca .*missing\.pem/
      )
    })

    it('--insecure skips verification on both; with a pin or a CA it is a usage error', async () => {
      expect(await side(['--insecure'], 'from')).toMatchObject({ insecure: true })
      expect(await side(['--insecure'], 'to')).toMatchObject({ insecure: true })
      expect(await side(['--to-insecure'], 'from')).toMatchObject({ insecure: false })
      const pin = 'ab'.repeat(32)
      await expect(side(['--insecure', '--to-fingerprint', pin], 'to')).rejects.toThrow(
        new UsageError('--insecure contradicts --to-fingerprint: choose one')
      )
      const ca = join(dir, 'shared.pem')
      await expect(side(['--insecure', '--ca', ca], 'from')).rejects.toThrow(
        new UsageError('--insecure contradicts --ca: choose one')
      )
    })

    it('without sharedTls a prefixed side ignores them (scripts with one pool have none)', async () => {
      const argv = await parseTwo(['--insecure'])
      await expect(resolveConnection(argv, { env, prefix: 'from', ...io })).resolves.toMatchObject({
        insecure: false,
      })
    })
  })

  it('rejects a password in argv and says why', async () => {
    const env = { ...noSocket, XAPI_URL: 'https://pool', XAPI_PASSWORD: 'x' }
    await expect(
      resolveConnection(await parse(['--password', 'x']), { env, ...io })
    ).rejects.toThrow(
      /--password is not accepted: a password in argv is visible .* use XAPI_PASSWORD, --password-file or the prompt/
    )
  })

  it('fails with exit 2 when there is no URL and no dom0 socket, or no password and no TTY', async () => {
    await expect(resolveConnection(await parse([]), { env: noSocket, ...io })).rejects.toThrow(
      new UsageError('no XAPI URL: pass --url or set XAPI_URL')
    )
    const env = { ...noSocket, XAPI_URL: 'https://pool' }
    await expect(resolveConnection(await parse([]), { env, ...io })).rejects.toThrow(
      /no password: set XAPI_PASSWORD, pass --password-file, or run on a terminal/
    )
  })

  describe('with a dom0 socket', () => {
    const socket = join(tmpdir(), `xapi-${process.pid}.sock`)
    const server = createServer()
    beforeAll(() => new Promise<void>((resolve) => server.listen(socket, resolve)))
    afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())))

    it('defaults to unix:<socket> with an empty password for root', async () => {
      const env = { XAPI_OPS_DOM0_SOCKET: socket }
      await expect(resolveConnection(await parse([]), { env, ...io })).resolves.toMatchObject({
        url: `unix:${socket}`,
        user: 'root',
        password: '',
        localSocket: true,
      })
    })

    it('does not default the prefixed variant to the socket', async () => {
      const env = { XAPI_OPS_DOM0_SOCKET: socket, XAPI_TO_PASSWORD: 'x' }
      await expect(
        resolveConnection(await parse([], 'to'), { env, prefix: 'to', ...io })
      ).rejects.toThrow('no XAPI URL: pass --to-url or set XAPI_TO_URL')
    })
  })
})

describe('validateUrl and normalizeFingerprint', () => {
  it.each(['https://h', 'http://10.0.0.1:8080', 'unix:/var/lib/xcp/xapi', 'https://[::1]'])(
    'accepts %s',
    (url) => {
      expect(() => validateUrl(url)).not.toThrow()
    }
  )
  it.each([
    ['ftp://h', /unsupported scheme ftp:/],
    ['pool-a', /not a URL/],
    ['https://root:pw@h', /credentials in the URL are not accepted/],
    ['unix:', /needs a socket path/],
  ])('rejects %s', (url, message) => {
    expect(() => validateUrl(url)).toThrow(message)
  })
  it('normalizes fingerprints', () => {
    const hex = 'ab'.repeat(32)
    expect(normalizeFingerprint(hex.toUpperCase().match(/../g)!.join(':'))).toBe(hex)
    expect(normalizeFingerprint(`sha256:${hex}`)).toBe(hex)
    expect(() => normalizeFingerprint('abc')).toThrow(/64 hex digits/)
  })
})
