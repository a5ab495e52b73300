import {
  exportVmToFile,
  isXapiError,
  XAPI_CLIENT_ERROR_CODES,
  type Ref,
  type XapiClient,
} from '@xapi-ops/xapi'
import { errorCode } from '../../lib/errors.js'
import { isLocalFsError, TransferBrokenError, XvaVerificationError } from '../transfer/retry.js'
import { exportPaths, type Compression, type CompressOn } from './naming.js'

/** One attempt at writing an export to its file. */
export type WriteExportOptions = {
  readonly dir: string
  readonly file: string
  /** The VM or the snapshot to export. */
  readonly vm: Ref<'VM'>
  readonly compression: Compression
  /** `client`: the host sends the archive raw, it is compressed (zstd) here. */
  readonly compressOn?: CompressOn
  readonly metadataOnly: boolean
  readonly signal: AbortSignal
  /** Bytes written so far and, when known, the fraction of the disks verified. */
  readonly onProgress?: (bytes: number, fraction: number | undefined) => void
}

/** The file written. */
export type WrittenExport = { readonly bytes: number; readonly sha256: string }

/**
 * Streams an export into `<file>.part` while xapi's importer is replayed on it (compressed
 * streams too), fsyncs it and renames it to `<file>` only once the archive verified and the
 * server's task succeeded (`exportVmToFile`). On any failure the `.part` file is removed and the
 * export cancelled.
 */
export async function writeExport(
  client: XapiClient,
  options: WriteExportOptions
): Promise<WrittenExport> {
  const { dir, file, signal } = options
  const { final, part } = exportPaths(dir, file)
  signal.throwIfAborted()
  let started = false
  try {
    return await exportVmToFile(client, options.vm, final, {
      ...(options.compressOn === 'client'
        ? { compression: 'none' as const, clientCompression: { codec: 'zstd' as const } }
        : { compression: options.compression }),
      metadataOnly: options.metadataOnly,
      verify: true,
      sha256: true,
      fsync: true,
      signal,
      onResponse: () => (started = true),
      onProgress: (p) => options.onProgress?.(p.bytes, p.fraction),
    })
  } catch (error) {
    signal.throwIfAborted()
    if (isLocalFsError(error)) throw localError(error, part)
    // The host sent another compression than asked: a new attempt would get the same.
    if (errorCode(error) === XAPI_CLIENT_ERROR_CODES.COMPRESSION_MISMATCH) throw error
    const why = verdict(error)
    // The host answered 200 and the stream then broke: whatever the task says (xapi reports a broken
    // connection as INTERNAL_ERROR, VDI_IO_ERROR…), a new attempt may go through.
    if (started && !(why instanceof XvaVerificationError)) throw new TransferBrokenError(why)
    throw why
  }
}

/** The task's verdict; the in-flight verifier's errors carry xapi's import codes. */
function verdict(error: unknown): unknown {
  if (isXapiError(error) && error.code.startsWith('IMPORT_ERROR')) {
    return new XvaVerificationError(`the archive failed verification: ${error.message}`, {
      cause: error,
    })
  }
  return error
}

function localError(error: unknown, path: string): Error {
  const e = error as NodeJS.ErrnoException
  if (e.message.includes(path)) return e
  const wrapped = new Error(`cannot write ${path}: ${e.message}`, {
    cause: e,
  }) as NodeJS.ErrnoException
  if (e.code !== undefined) wrapped.code = e.code
  return wrapped
}
