import { describe, expect, it } from 'vitest'
import { actionTarget, describeTarget, resolveLocation } from './url.js'

describe('transfer targets', () => {
  const target = actionTarget('https://pool.example:8443/ignored', '/export', {
    session_id: 'OpaqueRef:secret',
    task_id: 'OpaqueRef:t',
    sr_id: undefined,
  })

  it('puts session and task in the query, never in descriptions', () => {
    expect(target.base.href).toBe('https://pool.example:8443/')
    expect(target.path).toBe('/export?session_id=OpaqueRef%3Asecret&task_id=OpaqueRef%3At')
    expect(describeTarget(target)).toBe('https://pool.example:8443/export')
  })

  it.each([
    ['https://10.0.0.2/export?a=1', 'https://10.0.0.2/export?a=1'],
    ['http://[fd00::2]:80/export?a=1', 'http://[fd00::2]/export?a=1'],
    ['/import?b=2', 'https://pool.example:8443/import?b=2'],
  ])('resolves Location %s', (location, expected) => {
    const to = resolveLocation(target, location)
    expect(`${to.base.origin}${to.path}`).toBe(expected)
  })

  it('keeps a relative redirect on the dom0 socket', () => {
    const local = actionTarget('unix:/var/lib/xcp/xapi', '/import', { session_id: 'OpaqueRef:s' })
    expect(describeTarget(local)).toBe('unix:/var/lib/xcp/xapi/import')
    const to = resolveLocation(local, '/import?x=1')
    expect(to.base.href).toBe('unix:/var/lib/xcp/xapi')
    expect(to.path).toBe('/import?x=1')
    expect(resolveLocation(local, 'https://10.0.0.3/import').base.origin).toBe('https://10.0.0.3')
  })

  it('refuses a redirect to another scheme', () => {
    expect(() => resolveLocation(target, 'ftp://x/export')).toThrow(TypeError)
  })
})
