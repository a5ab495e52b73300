import { describe, expect, it } from 'vitest'
import {
  InvalidOptionError,
  XapiClientError,
  XapiError,
  XapiProtocolError,
  XapiTimeoutError,
  XapiTlsError,
  XapiTransportError,
  isXapiClientError,
  isXapiError,
} from '../src/index.js'

describe('XapiError', () => {
  it('keeps the ErrorDescription verbatim and names params from the shared table', () => {
    const e = XapiError.fromErrorDescription([
      'VM_BAD_POWER_STATE',
      'OpaqueRef:v',
      'halted',
      'running',
    ])
    expect(e).toMatchObject({
      name: 'XapiError',
      code: 'VM_BAD_POWER_STATE',
      params: ['OpaqueRef:v', 'halted', 'running'],
    })
    expect(e.message).toBe('VM_BAD_POWER_STATE(OpaqueRef:v, halted, running)')
    expect(e.namedParams).toEqual({ vm: 'OpaqueRef:v', expected: 'halted', actual: 'running' })
    expect(new XapiError('SOMETHING_NEW', ['a']).namedParams).toEqual({ param0: 'a' })
  })

  it('copes with malformed descriptions', () => {
    expect(XapiError.fromErrorDescription([]).code).toBe('UNKNOWN_ERROR')
    expect(XapiError.fromErrorDescription('boom').params).toEqual(['boom'])
    expect(XapiError.fromErrorDescription(['X', 1, null]).params).toEqual(['1', 'null'])
  })

  it('guards by class and code', () => {
    const e = new XapiError('HANDLE_INVALID', ['VM', 'OpaqueRef:x'])
    expect(isXapiError(e)).toBe(true)
    expect(isXapiError(e, 'HANDLE_INVALID')).toBe(true)
    expect(isXapiError(e, 'SESSION_INVALID')).toBe(false)
    expect(isXapiError(new Error('x'))).toBe(false)
    expect(isXapiClientError(e)).toBe(false)
  })
})

describe('client errors', () => {
  it('have stable codes, names and causes; subclasses are told apart', () => {
    const cause = new Error('ECONNRESET')
    const errors = [
      new XapiTransportError('t', { cause, status: 500 }),
      new XapiProtocolError('p', { cause }),
      new XapiTimeoutError('to', 100),
      new XapiTlsError('tls', { pinMismatch: true }),
      new InvalidOptionError('url', 'bad'),
    ]
    expect(errors.map((e) => [e.name, e.code])).toEqual([
      ['XapiTransportError', 'XAPI_CLIENT_TRANSPORT'],
      ['XapiProtocolError', 'XAPI_CLIENT_PROTOCOL'],
      ['XapiTimeoutError', 'XAPI_CLIENT_TIMEOUT'],
      ['XapiTlsError', 'XAPI_CLIENT_TLS_PIN_MISMATCH'],
      ['InvalidOptionError', 'XAPI_CLIENT_INVALID_OPTION'],
    ])
    for (const e of errors) {
      expect(e).toBeInstanceOf(XapiClientError)
      expect(e).toBeInstanceOf(Error)
      expect(isXapiClientError(e)).toBe(true)
      expect(isXapiError(e)).toBe(false)
    }
    expect(errors[0]!.cause).toBe(cause)
    expect(errors[0]).not.toBeInstanceOf(XapiTimeoutError)
    expect(errors[2]).not.toBeInstanceOf(XapiTransportError)
  })
})
