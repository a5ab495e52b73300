import { XvaInspector } from '@xapi-ops/xapi-formats'

/**
 * The in-flight XVA verifier: replays xapi's importer on the bytes as they arrive and fails
 * with xapi's import error (`IMPORT_ERROR_PREMATURE_EOF`, a checksum failure naming the block, …).
 */
export function createInFlightVerifier(options: {
  metadataOnly: boolean
  onError: (error: Error) => void
}): XvaInspector {
  return new XvaInspector(options)
}

/** Disk positions verified so far over the disks' total size, once `ova.xml` is parsed. */
export function verifiedFraction(inspector: XvaInspector): number | undefined {
  const { diskBytes, totalDiskBytes } = inspector.progress
  return totalDiskBytes > 0 ? diskBytes / totalDiskBytes : undefined
}
