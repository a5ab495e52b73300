import { open } from 'node:fs/promises'

/** What a file's first bytes say it is: what xapi's importer looks at first. */
export type ArchiveKind = 'empty' | 'xva' | 'gzip' | 'zstd' | 'unknown'

const GZIP = Buffer.from([0x1f, 0x8b])
const ZSTD = Buffer.from([0x28, 0xb5, 0x2f, 0xfd])
// An XVA is a tar archive whose first member is ova.xml: its header starts with the name.
const OVA_XML = Buffer.from('ova.xml\0')

/**
 * Reads a file's first bytes: a tar starting with `ova.xml`, gzip or zstd (xapi's importer
 * detects these three, whatever the file is called). Rejects with the file-system error
 * (`ENOENT`, `EACCES`, `EISDIR`…) when the file cannot be read.
 */
export async function sniffArchive(path: string): Promise<ArchiveKind> {
  const fh = await open(path, 'r')
  try {
    const head = Buffer.alloc(OVA_XML.length)
    const { bytesRead } = await fh.read(head, 0, head.length, 0)
    if (bytesRead === 0) return 'empty'
    const got = head.subarray(0, bytesRead)
    if (got.subarray(0, GZIP.length).equals(GZIP)) return 'gzip'
    if (got.subarray(0, ZSTD.length).equals(ZSTD)) return 'zstd'
    if (got.equals(OVA_XML)) return 'xva'
    return 'unknown'
  } finally {
    await fh.close()
  }
}

/** Why a file of this kind cannot be an XVA archive, if it cannot. */
export function notAnArchive(kind: ArchiveKind): string | undefined {
  if (kind === 'empty') return 'the file is empty'
  if (kind === 'unknown')
    return 'not an XVA archive: it starts neither with ova.xml (an XVA is a tar archive whose first member is ova.xml) nor with gzip or zstd magic'
  return undefined
}
