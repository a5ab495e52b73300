import { join } from 'node:path'

/** How an archive is compressed (`--compress`), as `exportVm` and xapi name it. */
export type Compression = 'none' | 'gzip' | 'zstd'
/** Who compresses: the host (`use_compression`) or this machine (zstd). */
export type CompressOn = 'host' | 'client'

/** Suffix of a file being written; it gets its final name only once verified. */
export const PART_SUFFIX = '.part'

const MAX_NAME_LENGTH = 80
const EXTENSIONS: Record<Compression, string> = { none: '.xva', gzip: '.xva.gz', zstd: '.xva.zst' }

/**
 * A name_label made safe for any file system and shell: ASCII letters, digits, `.`, `_`, `-`
 * (accents dropped, anything else → `_`), no leading dot, at most 80 characters.
 */
export function safeName(label: string): string {
  const ascii = label.normalize('NFKD').replace(/[\u0300-\u036f]/g, '')
  const safe = ascii
    .replace(/[^A-Za-z0-9._-]+/g, '_')
    .replace(/_+/g, '_')
    .replace(/^[._-]+/, '')
    .slice(0, MAX_NAME_LENGTH)
    .replace(/[._-]+$/, '')
  return safe === '' ? 'vm' : safe
}

/** `<name_label>_<uuid>.xva[.gz|.zst]`, with a {@link safeName}. */
export function exportFileName(name: string, uuid: string, compression: Compression): string {
  return `${safeName(name)}_${uuid}${EXTENSIONS[compression]}`
}

/** The final path of an export and the `.part` path it is written to first. */
export function exportPaths(dir: string, file: string): { final: string; part: string } {
  const final = join(dir, file)
  return { final, part: `${final}${PART_SUFFIX}` }
}

/** The compression an archive's file name announces. */
export function compressionOfFile(file: string): Compression | undefined {
  if (file.endsWith('.xva')) return 'none'
  if (file.endsWith('.xva.gz')) return 'gzip'
  if (file.endsWith('.xva.zst')) return 'zstd'
  return undefined
}
