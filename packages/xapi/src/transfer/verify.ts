import { XvaInspector, type XvaCompression } from '@xapi-ops/xapi-formats'
import { XapiClientError, XAPI_CLIENT_ERROR_CODES } from '../errors.js'

/**
 * The in-flight XVA verifier: replays xapi's importer on the bytes as they arrive and fails
 * with xapi's import error (`IMPORT_ERROR_PREMATURE_EOF`, a checksum failure naming the block, …).
 */
export function createInFlightVerifier(options: {
  metadataOnly: boolean
  onError: (error: Error) => void
  /** The compression asked of the host: another one fails the transfer at its first bytes. */
  expectCompression?: XvaCompression | undefined
}): XvaInspector {
  const { expectCompression: expected, ...rest } = options
  return new XvaInspector({
    ...rest,
    ...(expected && {
      onCompression(actual) {
        if (actual !== expected) throw compressionMismatch(expected, actual)
      },
    }),
  })
}

/**
 * xapi reads `use_compression` as gzip for `true`/`gzip`, zstd for `zstd` and none for anything
 * else: a release without zstd sends an uncompressed archive where zstd was asked.
 */
function compressionMismatch(expected: XvaCompression, actual: XvaCompression): XapiClientError {
  const sent = actual === 'none' ? 'an uncompressed archive' : `a ${actual} archive`
  return new XapiClientError(
    XAPI_CLIENT_ERROR_CODES.COMPRESSION_MISMATCH,
    `asked for a ${expected} archive (use_compression), the host sent ${sent}` +
      (actual === 'none' ? ` (this xapi may not know ${expected})` : '')
  )
}

/** Disk positions verified so far over the disks' total size, once `ova.xml` is parsed. */
export function verifiedFraction(inspector: XvaInspector): number | undefined {
  const { diskBytes, totalDiskBytes } = inspector.progress
  return totalDiskBytes > 0 ? diskBytes / totalDiskBytes : undefined
}

/** The compression an export must arrive in: what was asked of the host (none for metadata). */
export function askedCompression(o: {
  compression: XvaCompression
  metadataOnly: boolean
}): XvaCompression | undefined {
  return o.metadataOnly ? undefined : o.compression
}
