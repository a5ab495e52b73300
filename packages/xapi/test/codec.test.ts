import { describe, expect, it } from 'vitest'
import {
  XapiProtocolError,
  decodeXmlRpcValue,
  encodeXmlRpcValue,
  parseXapiDate,
} from '../src/index.js'
import { decodeMethodResponse } from '../src/transport/codec.js'
import { encodeJsonRpcRequest } from '../src/transport/json-rpc.js'
import { encodeMethodCall, unwrapEnvelope } from '../src/transport/xml-rpc.js'

// Golden fragments in the encoding xapi produces (xapi-protocol.md §3.1, §3.6).
describe('decodeXmlRpcValue', () => {
  it.each([
    ['<value>OpaqueRef:abc</value>', 'OpaqueRef:abc'],
    ['<value></value>', ''],
    ['<value/>', ''],
    ['<value><string/></value>', ''],
    ['<value><string>x &amp; y</string></value>', 'x & y'],
    ['<value>  spaced  </value>', '  spaced  '],
    ['<value>a &lt;b&gt; &quot;c&quot; &#65;&#x42;</value>', 'a <b> "c" AB'],
    ['<value><![CDATA[<raw> & stuff]]></value>', '<raw> & stuff'],
    ['<value><i8>9007199254740991</i8></value>', 9007199254740991],
    ['<value><i8>9007199254740993</i8></value>', 9007199254740993n],
    ['<value><int>-42</int></value>', -42],
    ['<value><i4>7</i4></value>', 7],
    ['<value><boolean>1</boolean></value>', true],
    ['<value><boolean>0</boolean></value>', false],
    ['<value><double>0.5</double></value>', 0.5],
    ['<value><double>1</double></value>', 1],
    ['<value><double>inf</double></value>', Infinity],
    ['<value><nil/></value>', null],
    ['<value><base64>aGk=</base64></value>', Buffer.from('hi')],
    ['<value><array><data/></array></value>', []],
    ['<value><struct/></value>', {}],
    [
      '<value><array><data><value>OpaqueRef:a</value><value>OpaqueRef:b</value></data></array></value>',
      ['OpaqueRef:a', 'OpaqueRef:b'],
    ],
    [
      '<value>\n <struct>\n  <member><name>power_state</name><value>Running</value></member>\n  <member><name>VCPUs_max</name><value>4</value></member>\n  <member><name>other_config</name><value><struct></struct></value></member>\n </struct>\n</value>',
      { power_state: 'Running', VCPUs_max: '4', other_config: {} },
    ],
    ['', ''],
  ])('%s', (xml, expected) => {
    expect(decodeXmlRpcValue(xml)).toEqual(expected)
  })

  it('decodes dateTime.iso8601 in UTC, with or without Z', () => {
    const utc = new Date('2024-01-02T03:04:05Z')
    expect(
      decodeXmlRpcValue('<value><dateTime.iso8601>20240102T03:04:05Z</dateTime.iso8601></value>')
    ).toEqual(utc)
    expect(
      decodeXmlRpcValue('<value><dateTime.iso8601>20240102T03:04:05</dateTime.iso8601></value>')
    ).toEqual(utc)
    expect(parseXapiDate('2024-01-02T03:04:05.000Z')).toEqual(utc)
    expect(parseXapiDate('not a date')).toBeUndefined()
  })

  it('keeps a __proto__ member as data', () => {
    const v = decodeXmlRpcValue(
      '<value><struct><member><name>__proto__</name><value>x</value></member></struct></value>'
    ) as Record<string, unknown>
    expect(Object.getPrototypeOf(v)).toBe(Object.prototype)
    expect(Object.keys(v)).toEqual(['__proto__'])
  })

  it.each([
    '<value><array><data><value>x</value></data></value>',
    '<value><int>abc</int></value>',
    '<value><boolean>2</boolean></value>',
    '<value><BODY>oops</BODY></value>',
    '<html><body>500</body></html>',
    '<value>x</value><value>y</value>',
    '<value><struct><member><name>a</name>',
  ])('rejects malformed %s', (xml) => {
    expect(() => decodeXmlRpcValue(xml)).toThrow(XapiProtocolError)
  })
})

describe('decodeMethodResponse', () => {
  it('unwraps a Success envelope', () => {
    const xml =
      '<?xml version="1.0"?><methodResponse><params><param><value><struct><member><name>Status</name><value>Success</value></member><member><name>Value</name><value>OpaqueRef:s</value></member></struct></value></param></params></methodResponse>'
    const res = decodeMethodResponse(xml)
    expect(res).toEqual({ fault: false, value: { Status: 'Success', Value: 'OpaqueRef:s' } })
    expect(unwrapEnvelope(res.value, 'x')).toBe('OpaqueRef:s')
  })

  it('turns a Failure envelope into an XapiError', () => {
    const xml =
      '<?xml version="1.0"?><methodResponse><params><param><value><struct><member><name>Status</name><value>Failure</value></member><member><name>ErrorDescription</name><value><array><data><value>VM_BAD_POWER_STATE</value><value>OpaqueRef:vm</value><value>halted, suspended</value><value>running</value></data></array></value></member></struct></value></param></params></methodResponse>'
    const res = decodeMethodResponse(xml)
    expect(() => unwrapEnvelope(res.value, 'VM.start')).toThrowErrorMatchingInlineSnapshot(
      `[XapiError: VM_BAD_POWER_STATE(OpaqueRef:vm, halted, suspended, running)]`
    )
  })

  it('reports a fault as such', () => {
    const xml =
      '<methodResponse><fault><value><struct><member><name>faultCode</name><value><int>1</int></value></member><member><name>faultString</name><value>boom</value></member></struct></value></fault></methodResponse>'
    expect(decodeMethodResponse(xml).fault).toBe(true)
  })

  it('rejects two params and a truncated document', () => {
    expect(() =>
      decodeMethodResponse(
        '<methodResponse><params><param><value>a</value></param><param><value>b</value></param></params></methodResponse>'
      )
    ).toThrow(/more than one/)
    expect(() => decodeMethodResponse('<methodResponse><params><param><value>a')).toThrow(
      XapiProtocolError
    )
  })
})

describe('encodeXmlRpcValue', () => {
  it('encodes XAPI-style', () => {
    expect(encodeXmlRpcValue('OpaqueRef:a')).toBe('<value>OpaqueRef:a</value>')
    expect(encodeXmlRpcValue('')).toBe('<value/>')
    expect(encodeXmlRpcValue('a<&>"b\u0001')).toBe('<value>a&lt;&amp;&gt;&quot;b</value>')
    expect(encodeXmlRpcValue(4294967296)).toBe('<value><i8>4294967296</i8></value>')
    expect(encodeXmlRpcValue(12n)).toBe('<value><i8>12</i8></value>')
    expect(encodeXmlRpcValue(0.25)).toBe('<value><double>0.25</double></value>')
    expect(encodeXmlRpcValue(true)).toBe('<value><boolean>1</boolean></value>')
    expect(encodeXmlRpcValue(null)).toBe('<value><nil/></value>')
    expect(encodeXmlRpcValue(new Date('2024-01-02T03:04:05.678Z'))).toBe(
      '<value><dateTime.iso8601>20240102T03:04:05Z</dateTime.iso8601></value>'
    )
    expect(encodeXmlRpcValue(['OpaqueRef:a'])).toBe(
      '<value><array><data><value>OpaqueRef:a</value></data></array></value>'
    )
    expect(encodeXmlRpcValue({ a: '1', b: undefined })).toBe(
      '<value><struct><member><name>a</name><value>1</value></member></struct></value>'
    )
  })

  it('round-trips through the decoder', () => {
    const v = {
      s: 'x & <y>',
      e: '',
      n: 42,
      f: 1.5,
      b: false,
      d: new Date('2024-01-02T03:04:05Z'),
      a: [1, 'two', [{}]],
      z: null,
    }
    expect(decodeXmlRpcValue(encodeXmlRpcValue(v))).toEqual(v)
  })
})

describe('request encoding', () => {
  it('serialises an XML-RPC methodCall through the xmlrpc package, XAPI-style', () => {
    const xml = encodeMethodCall('VM.set_memory', [
      'OpaqueRef:s',
      '',
      'x&y',
      2 ** 40,
      0.5,
      true,
      new Date('2024-01-02T03:04:05Z'),
    ])
    expect(xml).toContain('<methodName>VM.set_memory</methodName>')
    expect(xml).toContain('<value>OpaqueRef:s</value>')
    expect(xml).toContain('<value/>')
    expect(xml).toContain('<value>x&amp;y</value>')
    expect(xml).toContain('<value><i8>1099511627776</i8></value>')
    expect(xml).toContain('<value><double>0.5</double></value>')
    expect(xml).toContain('<value><boolean>1</boolean></value>')
    expect(xml).toContain('<dateTime.iso8601>20240102T03:04:05Z</dateTime.iso8601>')
    expect(xml).not.toContain('<string')
  })

  it('serialises a JSON-RPC 2.0 request with XAPI dates', () => {
    const body = JSON.parse(
      encodeJsonRpcRequest('task.create', ['s', new Date('2024-01-02T03:04:05Z')])
    )
    expect(body).toMatchObject({
      jsonrpc: '2.0',
      method: 'task.create',
      params: ['s', '20240102T03:04:05Z'],
    })
    expect(typeof body.id).toBe('number')
  })
})

describe('robustness', () => {
  it('skips a DOCTYPE and never shows a ref in a parse error', () => {
    expect(
      decodeMethodResponse(
        '<?xml version="1.0"?><!DOCTYPE x><methodResponse><params><param><value>ok</value></param></params></methodResponse>'
      )
    ).toEqual({ fault: false, value: 'ok' })
    expect(() =>
      decodeXmlRpcValue(
        '<value><struct><member><name>Value</name><value>OpaqueRef:secret-1</value><oops/>'
      )
    ).toThrow(/OpaqueRef:\*\*\*/)
  })
})
