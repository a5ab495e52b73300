import { describe, expect, it } from 'vitest'
import { XmlRpcSyntaxError, decodeXmlRpcValue, parseXmlRpcValue } from '../src/index.js'

describe('decodeXmlRpcValue', () => {
  it('decodes what xapi writes, typed and untyped', () => {
    const xml =
      '<value><struct>' +
      '<member><name>ref</name><value>OpaqueRef:a&amp;b</value></member>' +
      '<member><name>big</name><value><i8>9007199254740993</i8></value></member>' +
      '<member><name>blob</name><value><base64>AP8=</base64></value></member>' +
      '<member><name>none</name><value><nil/></value></member>' +
      '<member><name>cdata</name><value><![CDATA[<x>]]></value></member>' +
      '</struct></value>'
    expect(decodeXmlRpcValue(xml)).toEqual({
      ref: 'OpaqueRef:a&b',
      big: 9007199254740993n,
      blob: Buffer.from([0, 255]),
      none: null,
      cdata: '<x>',
    })
  })

  it('refuses a date that is no date, or keeps its text when asked', () => {
    const xml = '<value><dateTime.iso8601> later </dateTime.iso8601></value>'
    expect(() => decodeXmlRpcValue(xml)).toThrow(XmlRpcSyntaxError)
    expect(decodeXmlRpcValue(xml, { invalidDate: 'text' })).toBe('later')
  })

  it('says where malformed input breaks, refs hidden', () => {
    expect(() =>
      decodeXmlRpcValue('<value><struct><member><name>s</name><value>OpaqueRef:secret')
    ).toThrow(/Malformed XML-RPC: .* at offset \d+ \(near `.*OpaqueRef:\*\*\*/)
  })
})

describe('parseXmlRpcValue (ova.xml records)', () => {
  it('keeps as text what a record keeps as text', () => {
    const xml =
      '<value><struct>' +
      '<member><name>big</name><value><i8>9007199254740993</i8></value></member>' +
      '<member><name>blob</name><value><base64>AP8=</base64></value></member>' +
      '<member><name>when</name><value><dateTime.iso8601>sometime</dateTime.iso8601></value></member>' +
      '<member><name>list</name><value><array><data><value><i8>1</i8></value></data></array></value></member>' +
      '</struct></value>'
    const v = parseXmlRpcValue(xml) as Record<string, unknown>
    expect({ ...v }).toEqual({
      big: '9007199254740993',
      blob: '\u0000\u00ff',
      when: 'sometime',
      list: [1],
    })
    // Records are plain data: no inherited keys.
    expect(Object.getPrototypeOf(v)).toBeNull()
  })
})
