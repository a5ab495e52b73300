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

/** `%.16g`-like rendering of a double (OCaml's ocaml-rpc prints floats that way). */
export function formatDouble(n: number): string {
  if (Number.isInteger(n) && Math.abs(n) < 1e16) return String(n)
  const s = n.toPrecision(16)
  if (s.includes('e')) return s.replace(/\.?0+e/, 'e')
  return s.includes('.') ? s.replace(/\.?0+$/, '') : s
}
