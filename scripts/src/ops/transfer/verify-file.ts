import { createReadStream } from 'node:fs'
import { Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { createXvaVerifier, FileWriter, type XvaSummary } from '@xapi-ops/xapi'
import { XvaVerificationError } from './retry.js'

/** What {@link verifyFile} found. */
export type VerifiedFile = {
  readonly bytes: number
  readonly sha256: string
  readonly summary: XvaSummary
}

/**
 * Reads an XVA file (plain, gzip or zstd) once: replays xapi's importer on it and computes its
 * SHA-256. Rejects with {@link XvaVerificationError} when it is not a valid archive, or with
 * the file-system error (`ENOENT`…) when it cannot be read.
 */
export async function verifyFile(
  path: string,
  options: { readonly metadataOnly?: boolean; readonly signal?: AbortSignal } = {}
): Promise<VerifiedFile> {
  const hasher = await FileWriter.open(undefined, { sha256: true })
  const verifier = createXvaVerifier({ metadataOnly: options.metadataOnly ?? false })
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
      createReadStream(path, { highWaterMark: 1024 * 1024 }),
      verifier,
      sink,
      options.signal ? { signal: options.signal } : {}
    )
    written = await hasher.finish()
  } catch (error) {
    await hasher.close()
    options.signal?.throwIfAborted()
    if (verifyError !== undefined) {
      throw new XvaVerificationError(`not a valid XVA archive: ${message(verifyError)}`, {
        cause: verifyError,
      })
    }
    throw error
  }
  try {
    const summary = await verifier.result
    return { bytes: written.bytes, sha256: written.sha256, summary }
  } catch (error) {
    throw new XvaVerificationError(`not a valid XVA archive: ${message(error)}`, { cause: error })
  }
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}
