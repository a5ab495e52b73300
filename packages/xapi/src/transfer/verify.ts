import { createXvaVerifier, type XvaVerifier } from '../xva/verifier.js'

/**
 * The in-flight XVA verifier: a pass-through replaying xapi's importer, which errors with xapi's
 * import error (`IMPORT_ERROR_PREMATURE_EOF`, a checksum failure naming the block, …).
 */
export function createVerifyingTap(options: { metadataOnly: boolean }): XvaVerifier {
  return createXvaVerifier({ metadataOnly: options.metadataOnly })
}

/** Disk positions verified so far over the disks' total size, once `ova.xml` is parsed. */
export function verifiedFraction(tap: XvaVerifier): number | undefined {
  const { diskBytes, totalDiskBytes } = tap.progress
  return totalDiskBytes > 0 ? diskBytes / totalDiskBytes : undefined
}
