import { describe, expect, it } from 'vitest'
import { formatXapiDate, parseOvaXml, parseXapiDate } from '../src/index.js'

describe('XAPI dates', () => {
  const utc = new Date('2024-01-02T03:04:05Z')

  it.each([
    ['20240102T03:04:05Z', utc],
    ['20240102T03:04:05', utc],
    [' 20240102T03:04:05Z\n', utc],
    ['2024-01-02T03:04:05.000Z', utc],
    ['2024-01-02T05:04:05+02:00', utc],
    ['2024-01-02T05:04:05+0200', utc],
    ['2024-01-02T03:04:05.250Z', new Date('2024-01-02T03:04:05.250Z')],
  ])('parses %j', (text, date) => {
    expect(parseXapiDate(text)).toEqual(date)
  })

  it.each(['', 'not a date', '20241302T03:04:05Z', '20240102T03:04:05Z junk'])(
    'refuses %j',
    (text) => {
      expect(parseXapiDate(text)).toBeUndefined()
    }
  )

  it('formats as XAPI does, UTC, whole seconds', () => {
    expect(formatXapiDate(new Date('2024-01-02T03:04:05.678Z'))).toBe('20240102T03:04:05Z')
    expect(parseXapiDate(formatXapiDate(utc))).toEqual(utc)
  })

  it('ova.xml keeps a dateTime that is no date as its text', () => {
    const xml = (date: string) =>
      '<value><struct><member><name>version</name><value><struct></struct></value></member>' +
      '<member><name>objects</name><value><array><data><value><struct>' +
      '<member><name>class</name><value>VM</value></member>' +
      '<member><name>id</name><value>Ref:0</value></member>' +
      '<member><name>snapshot</name><value><struct><member><name>last_booted</name>' +
      `<value><dateTime.iso8601>${date}</dateTime.iso8601></value></member></struct></value></member>` +
      '</struct></value></data></array></value></member></struct></value>'
    const vm = (date: string) => parseOvaXml(xml(date)).objects[0]!.snapshot
    expect(vm('20240102T03:04:05Z').last_booted).toEqual(utc)
    expect(vm('sometime')).toMatchObject({ last_booted: 'sometime' })
  })
})
