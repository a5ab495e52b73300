import { describe, expect, it } from 'vitest'
import { I4 } from './values.js'
import {
  encodeXmlRpcValue,
  escapeXml,
  parseMethodCall,
  xmlRpcFailure,
  XmlRpcParseError,
} from './xml-rpc.js'

describe('encodeXmlRpcValue (xapi encoding)', () => {
  it.each([
    ['a string', 'abc', '<value>abc</value>'],
    ['an int, untyped', 42, '<value>42</value>'],
    ['a float', 0.5, '<value><double>0.5</double></value>'],
    ['a bool', true, '<value><boolean>1</boolean></value>'],
    ['an i4', new I4(3), '<value><i4>3</i4></value>'],
    [
      'a date with Z',
      new Date(Date.UTC(2024, 0, 2, 3, 4, 5)),
      '<value><dateTime.iso8601>20240102T03:04:05Z</dateTime.iso8601></value>',
    ],
    ['void', undefined, '<value></value>'],
    ['an empty array', [], '<value><array><data></data></array></value>'],
    [
      'a struct',
      { a: 1 },
      '<value><struct><member><name>a</name><value>1</value></member></struct></value>',
    ],
    [
      'a float field, integral',
      { progress: 1 },
      '<value><struct><member><name>progress</name><value><double>1</double></value></member></struct></value>',
    ],
  ])('%s', (_, v, xml) => {
    expect(encodeXmlRpcValue(v)).toBe(xml)
  })

  it('escapes & < > " and drops control characters', () => {
    expect(escapeXml('a&b<c>"d"\u0001e')).toBe('a&amp;b&lt;c&gt;&quot;d&quot;e')
  })

  it('builds failure envelopes', () => {
    expect(xmlRpcFailure(['X', 'y'])).toContain(
      '<member><name>ErrorDescription</name><value><array><data><value>X</value><value>y</value></data></array></value></member>'
    )
  })
})

describe('parseMethodCall', () => {
  it('reads every XML-RPC type, typed or not', () => {
    const xml =
      '<?xml version="1.0"?><methodCall><methodName>m</methodName><params>' +
      '<param><value>untyped</value></param><param><value><string>s</string></value></param>' +
      '<param><value><int>1</int></value></param><param><value><i4>2</i4></value></param><param><value><i8>3</i8></value></param>' +
      '<param><value><boolean>1</boolean></value></param><param><value><double>1.5</double></value></param>' +
      '<param><value><dateTime.iso8601>20240102T03:04:05Z</dateTime.iso8601></value></param>' +
      '<param><value><base64>aGk=</base64></value></param><param><value><nil/></value></param>' +
      '<param><value><array><data><value>a</value></data></array></value></param>' +
      '<param><value><struct><member><name>k</name><value>v</value></member></struct></value></param>' +
      '<param><value/></param><param><value><string/></value></param><param><value>a &amp; b</value></param>' +
      '</params></methodCall>'
    expect(parseMethodCall(xml)).toEqual({
      method: 'm',
      params: [
        'untyped',
        's',
        1,
        2,
        3,
        true,
        1.5,
        new Date(Date.UTC(2024, 0, 2, 3, 4, 5)),
        'hi',
        null,
        ['a'],
        { k: 'v' },
        '',
        '',
        'a & b',
      ],
    })
  })

  it.each([
    ['truncated', '<methodCall><methodName>m</methodName><params>'],
    ['no params', '<methodCall><methodName>m</methodName></methodCall>'],
    ['not XML', 'hello'],
    [
      'bad int',
      '<methodCall><methodName>m</methodName><params><param><value><int>x</int></value></param></params></methodCall>',
    ],
    [
      'unknown type',
      '<methodCall><methodName>m</methodName><params><param><value><foo>1</foo></value></param></params></methodCall>',
    ],
    ['trailing', '<methodCall><methodName>m</methodName><params/></methodCall><x/>'],
  ])('rejects %s', (_, xml) => {
    expect(() => parseMethodCall(xml)).toThrow(XmlRpcParseError)
  })
})
