/*
 * XAPI's DateTime text (ocaml-rpc `dateTime.iso8601`, also in JSON-RPC answers and ova.xml):
 * `YYYYMMDDTHH:MM:SSZ` in UTC. Older releases omitted the `Z`; some fields carry ISO 8601.
 */

/** Parses `YYYYMMDDTHH:MM:SS[Z]` (XAPI) or ISO 8601 `YYYY-MM-DDTHH:MM:SS[.sss][Z|±hh:mm]`. */
export function parseXapiDate(text: string): Date | undefined {
  const t = text.trim()
  const m =
    /^(\d{4})-?(\d{2})-?(\d{2})T(\d{2}):?(\d{2}):?(\d{2})(\.\d+)?(Z|[+-]\d{2}:?\d{2})?$/.exec(t)
  if (!m) return undefined
  // XAPI datetimes without a zone are UTC.
  const zone =
    m[8] === undefined || m[8] === 'Z' ? 'Z' : m[8].replace(/^([+-]\d{2})(\d{2})$/, '$1:$2')
  const d = new Date(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}${m[7] ?? ''}${zone}`)
  return Number.isNaN(d.getTime()) ? undefined : d
}

/** Formats a date the way XAPI does: `YYYYMMDDTHH:MM:SSZ` (UTC). */
export function formatXapiDate(date: Date): string {
  const iso = date.toISOString() // 2024-01-02T03:04:05.000Z
  return `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}T${iso.slice(11, 19)}Z`
}
