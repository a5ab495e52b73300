import { describe, expect, it } from 'vitest'
import {
  InvalidOptionError,
  XapiClientError,
  createClient,
  normalizeFingerprint,
} from '../src/index.js'
import { masterUrlFrom, parseXapiUrl, resolveOptions, splitHostPort } from '../src/options.js'

const base = { user: 'root', password: 's3cret' }
const FP = 'ab'.repeat(32)

function messageOf(fn: () => unknown): string {
  try {
    fn()
  } catch (e) {
    expect(e).toBeInstanceOf(InvalidOptionError)
    expect(e).toBeInstanceOf(XapiClientError)
    expect((e as InvalidOptionError).code).toBe('XAPI_CLIENT_INVALID_OPTION')
    return (e as Error).message
  }
  throw new Error('did not throw')
}

describe('resolveOptions', () => {
  it('applies defaults in one place', () => {
    const { resolved, baseUrl } = resolveOptions({ url: 'https://pool.example', ...base })
    expect(resolved).toEqual({
      url: 'https://pool.example',
      user: 'root',
      transport: 'auto',
      ca: undefined,
      fingerprint: undefined,
      allowUnauthorized: false,
      callTimeoutMs: 60_000,
      callConcurrency: 20,
      readOnly: false,
      originator: 'xapi-ops',
    })
    expect(baseUrl.href).toBe('https://pool.example/')
    expect(JSON.stringify(resolved)).not.toContain('s3cret')
  })

  it.each([
    ['192.168.1.10', /has no scheme: write https:\/\/192\.168\.1\.10/],
    ['xcp-host:443', /has no scheme/],
    ['ftp://host', /Unsupported URL scheme `ftp:`/],
    ['', /non-empty string/],
    ['https://root:hunter2@host', /contains credentials/],
    ['unix:relative/path', /absolute socket path/],
  ])('explains a bad url %s', (url, message) => {
    const text = messageOf(() => createClient({ url, ...base }))
    expect(text).toMatch(message)
    expect(text).not.toContain('hunter2')
  })

  it.each([
    [{ fingerprint: 'abcd' }, /64 hex digits.*got 4 hex digits/],
    [{ fingerprint: 'ab'.repeat(20) }, /looks like SHA-1/],
    [{ fingerprint: 'zz'.repeat(32) }, /only hex digits/],
    [{ transport: 'soap' }, /one of auto, json-rpc, xml-rpc, got `soap`/],
    [{ callTimeoutMs: -1 }, /`callTimeoutMs` to be a positive finite number, got `-1` \(number\)/],
    [{ callTimeoutMs: 'abc' }, /got `abc` \(string\)/],
    [{ callConcurrency: 0 }, /`callConcurrency` to be a positive integer/],
    [{ readOnly: 'yes' }, /`readOnly` to be a boolean/],
    [{ user: '' }, /`user` to be a non-empty string/],
  ])('explains %o', (extra, message) => {
    expect(
      messageOf(() => resolveOptions({ url: 'https://h', ...base, ...(extra as object) }))
    ).toMatch(message)
  })

  it('never echoes a password of the wrong type', () => {
    const text = messageOf(() =>
      resolveOptions({ url: 'https://h', user: 'root', password: 12345 as never })
    )
    expect(text).not.toContain('12345')
  })
})

describe('fingerprints', () => {
  it('accepts colons, case, spaces and a sha256 prefix', () => {
    const norm = normalizeFingerprint(FP)
    expect(norm).toMatch(/^AB(:AB){31}$/)
    expect(normalizeFingerprint(norm.toLowerCase())).toBe(norm)
    expect(normalizeFingerprint(`sha256:${FP}`)).toBe(norm)
    expect(normalizeFingerprint(`SHA256 Fingerprint=${norm}`.replace(' Fingerprint', ''))).toBe(
      norm
    )
  })
})

describe('urls', () => {
  it('parses the three schemes', () => {
    expect(parseXapiUrl('https://h:8443/').host).toBe('h:8443')
    expect(parseXapiUrl('http://[::1]:80').hostname).toBe('[::1]')
    expect(parseXapiUrl('unix:/var/lib/xcp/xapi').pathname).toBe('/var/lib/xcp/xapi')
    expect(parseXapiUrl('unix:///var/lib/xcp/xapi').pathname).toBe('/var/lib/xcp/xapi')
  })

  it.each([
    ['10.0.0.2', { host: '10.0.0.2' }],
    ['10.0.0.2:8443', { host: '10.0.0.2', port: '8443' }],
    ['fe80::1', { host: '[fe80::1]' }],
    ['[fe80::1]', { host: '[fe80::1]' }],
    ['[fe80::1]:443', { host: '[fe80::1]', port: '443' }],
    ['master.example', { host: 'master.example' }],
  ])('splits %s', (address, expected) => {
    expect(splitHostPort(address)).toEqual(expected)
  })

  it.each([
    ['https://10.0.0.1', '10.0.0.2', 'https://10.0.0.2/'],
    ['https://10.0.0.1:8443', '10.0.0.2', 'https://10.0.0.2:8443/'],
    ['http://127.0.0.1:4000', '127.0.0.1:4001', 'http://127.0.0.1:4001/'],
    ['https://10.0.0.1', '2001:db8::2', 'https://[2001:db8::2]/'],
    ['https://[2001:db8::1]:444', '[2001:db8::2]:443', 'https://[2001:db8::2]/'],
    ['unix:/var/lib/xcp/xapi', '10.0.0.2', 'https://10.0.0.2/'],
    ['https://10.0.0.1', 'https://10.0.0.2:444', 'https://10.0.0.2:444/'],
  ])('follows HOST_IS_SLAVE from %s to %s', (from, address, expected) => {
    expect(masterUrlFrom(parseXapiUrl(from), address).href).toBe(expected)
  })
})
