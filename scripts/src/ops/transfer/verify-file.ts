import { open } from 'node:fs/promises'
import { Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { createXvaVerifier, FileWriter, type XvaSummary } from '@xapi-ops/xapi'
import { XvaVerificationError } from './retry.js'
import { notAnArchive, sniffArchive } from './sniff-archive.js'

/** What {@link verifyFile} found. */
export type VerifiedFile = {
  readonly bytes: number
  readonly sha256: string
  readonly summary: XvaSummary
}

/**
 * Reads an XVA file (plain, gzip or zstd) once: replays xapi's importer on it and computes its
 * SHA-256. Rejects with {@link XvaVerificationError} when it is not a valid archive, or with
 * the file-system error (`ENOENT`, `EACCES`, `EIO`…) when it cannot be read. With `force`,
 * checksum mismatches are listed in the summary instead (xapi's `force=true`).
 */
export async function verifyFile(
  path: string,
  options: {
    readonly metadataOnly?: boolean
    readonly force?: boolean
    readonly signal?: AbortSignal
  } = {}
): Promise<VerifiedFile> {
  // Opened first: a file that cannot be read fails as such, not as a bad archive.
  const fh = await open(path, 'r')
  const hasher = await FileWriter.open(undefined, { sha256: true })
  const verifier = createXvaVerifier({
    metadataOnly: options.metadataOnly ?? false,
    force: options.force ?? false,
  })
  let verifyError: unknown
  verifier.once('error', (error) => (verifyError = error))
  // The verifier passes the bytes through unchanged: what reaches the hasher is the file.
  const sink = new Writable({
    highWaterMark: 1024 * 1024,
    write: (chunk: Buffer, _encoding, callback) => {
      const wait = hasher.write(chunk)
      if (wait) wait.then(() => callback(), callback)
      else callback()
    },
  })
  let written
  try {
    await pipeline(
      fh.createReadStream({ highWaterMark: 1024 * 1024 }),
      verifier,
      sink,
      options.signal ? { signal: options.signal } : {}
    )
    written = await hasher.finish()
  } catch (error) {
    await hasher.close()
    options.signal?.throwIfAborted()
    // A read error reaches the verifier too: it is the file system's, not the archive's.
    if (verifyError !== undefined && !isSystemError(verifyError)) {
      throw await invalid(path, verifyError)
    }
    throw error
  } finally {
    await fh.close().catch(() => {})
  }
  try {
    const summary = await verifier.result
    return { bytes: written.bytes, sha256: written.sha256, summary }
  } catch (error) {
    throw await invalid(path, error)
  }
}

/** The verification error, said plainly when the file is not an archive at all. */
async function invalid(path: string, error: unknown): Promise<XvaVerificationError> {
  const why = notAnArchive(await sniffArchive(path).catch(() => 'xva' as const))
  return new XvaVerificationError(why ?? `not a valid XVA archive: ${message(error)}`, {
    cause: error,
  })
}

function isSystemError(error: unknown): boolean {
  return typeof (error as { syscall?: unknown } | null)?.syscall === 'string'
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}
