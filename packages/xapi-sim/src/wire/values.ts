/**
 * The value model of the simulator's wire codecs. Records hold plain JS values; a few wrappers
 * carry what a JS value cannot say on its own (an XML-RPC `<i4>`, a float that happens to be
 * integral).
 */

/** A value sent as `<i4>` in XML-RPC (xapi does so for `event.from`'s `valid_ref_counts`). */
export class I4 {
  readonly value: number
  constructor(value: number) {
    this.value = value
  }
}

/**
 * Record fields whose datamodel type is `float` (or a map to floats): they are sent as `<double>`
 * even when integral, as xapi does (`task.progress` = `<double>1</double>`).
 */
export const FLOAT_FIELDS: ReadonlySet<string> = new Set([
  'progress',
  'HVM_shadow_multiplier',
  'VCPUs_utilisation',
  'utilisation',
])

/** XAPI's `dateTime.iso8601` text: `YYYYMMDDTHH:MM:SSZ`. */
export function formatXapiDate(d: Date): string {
  const iso = d.toISOString() // 2024-01-02T03:04:05.678Z
  return `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}T${iso.slice(11, 19)}Z`
}

/** Parses `YYYYMMDDTHH:MM:SS[Z]` or an ISO 8601 date; `undefined` when unparsable. */
export function parseXapiDate(s: string): Date | undefined {
  const m = /^(\d{4})-?(\d{2})-?(\d{2})T(\d{2}):?(\d{2}):?(\d{2})/.exec(s.trim())
  if (!m) return undefined
  const d = new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!))
  return Number.isNaN(d.getTime()) ? undefined : d
}

/** `%.16g`-like rendering of a double (OCaml's ocaml-rpc prints floats that way). */
export function formatDouble(n: number): string {
  if (Number.isInteger(n) && Math.abs(n) < 1e16) return String(n)
  const s = n.toPrecision(16)
  if (s.includes('e')) return s.replace(/\.?0+e/, 'e')
  return s.includes('.') ? s.replace(/\.?0+$/, '') : s
}
