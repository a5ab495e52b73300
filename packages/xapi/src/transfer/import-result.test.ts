import { describe, expect, test } from 'vitest'
import { XapiProtocolError } from '../errors.js'
import { decodeVmRefs } from './import-result.js'

describe('decodeVmRefs', () => {
  test.each([
    [
      'xapi: an XML-RPC array',
      '<value><array><data><value>OpaqueRef:a1</value></data></array></value>',
      ['OpaqueRef:a1'],
    ],
    [
      'two VMs, strings spelled out',
      '<value><array><data><value><string>OpaqueRef:a1</string></value><value>OpaqueRef:b2</value></data></array></value>',
      ['OpaqueRef:a1', 'OpaqueRef:b2'],
    ],
    ['metadata with no VM', '<value><array><data></data></array></value>', []],
    ['an empty data element', '<value><array><data/></array></value>', []],
    ['a JSON array', ['OpaqueRef:a1'], ['OpaqueRef:a1']],
    ['a bare ref', ' OpaqueRef:a1\n', ['OpaqueRef:a1']],
  ])('%s', (_, result, refs) => {
    expect(decodeVmRefs(result)).toEqual(refs)
  })

  test.each([[''], ['OK'], ['OpaqueRef:a1 OpaqueRef:b2'], [42], [null], [[1]]])(
    'refuses %j',
    (result) => {
      expect(() => decodeVmRefs(result)).toThrow(XapiProtocolError)
    }
  )
})
