/*
 * Entry names of an XVA: `ova.xml`, then `<disk id>/<counter>` data entries, each followed by
 * its checksum entry (`.xxhash` or `.checksum`), and how xapi's importer reads them.
 */

/** The data entry of block `counter` of disk `id` (`Ref:7/00000042`). */
export function blockName(id: string, counter: number): string {
  return `${id}/${String(counter).padStart(8, '0')}`
}

/** OCaml `int_of_string` (decimal, 0x/0o/0b, underscores, sign); NaN when it would fail. */
export function ocamlInt(s: string): number {
  const m = /^([-+]?)(0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|[0-9][0-9_]*)$/.exec(s)
  if (!m) return NaN
  const body = m[2]!.replace(/_/g, '')
  const radix = /^0[xX]/.test(body) ? 16 : /^0[oO]/.test(body) ? 8 : /^0[bB]/.test(body) ? 2 : 10
  const v = parseInt(radix === 10 ? body : body.slice(2), radix)
  return m[1] === '-' ? -v : v
}

/** OCaml `Filename.extension` of an entry name (`.xxhash`), or empty. */
export function extension(name: string): string {
  const base = name.slice(name.lastIndexOf('/') + 1)
  const dot = base.lastIndexOf('.')
  return dot > 0 ? base.slice(dot) : ''
}
