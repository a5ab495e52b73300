import { rename } from 'node:fs/promises'
import type { Readable } from 'node:stream'
import { finished } from 'node:stream/promises'
import { exportVm, FileWriter, isXapiError, type Ref, type XapiClient } from '@xapi-ops/xapi'
import { fsyncDir, removeQuietly } from '../transfer/fs-utils.js'
import { isLocalFsError, TransferBrokenError, XvaVerificationError } from '../transfer/retry.js'
import { exportPaths, type Compression } from './naming.js'

/** One attempt at writing an export to its file. */
export type WriteExportOptions = {
  readonly dir: string
  readonly file: string
  /** The VM or the snapshot to export. */
  readonly vm: Ref<'VM'>
  readonly compression: Compression
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
 * server's task succeeded. On any failure the `.part` file is removed and the export cancelled.
 */
export async function writeExport(
  client: XapiClient,
  options: WriteExportOptions
): Promise<WrittenExport> {
  const { dir, file, signal } = options
  const { final, part } = exportPaths(dir, file)
  signal.throwIfAborted()
  let done = false
  let writer: FileWriter<true> | undefined
  try {
    let fraction: number | undefined
    const report = () => options.onProgress?.(writer?.bytes ?? 0, fraction)
    const { body, task } = await exportVm(client, options.vm, {
      compression: options.compression,
      metadataOnly: options.metadataOnly,
      verify: true,
      signal,
      onProgress: (p) => {
        fraction = p.fraction
        report()
      },
    })
    try {
      writer = await FileWriter.open(part, { fsync: true, sha256: true })
    } catch (error) {
      body.destroy()
      await task.catch(() => {})
      throw error
    }
    const [written, settled] = await Promise.allSettled([copyBody(body, writer, report), task])
    signal.throwIfAborted()
    if (written.status === 'rejected') {
      const error: unknown = written.reason
      if (isLocalFsError(error)) throw localError(error, part)
      const why = verdict(settled.status === 'rejected' ? settled.reason : error)
      // The stream broke after it had started: whatever the task says (xapi reports a broken
      // connection as INTERNAL_ERROR, VDI_IO_ERROR…), a new attempt may go through.
      throw why instanceof XvaVerificationError ? why : new TransferBrokenError(why)
    }
    if (settled.status === 'rejected') throw verdict(settled.reason)
    // Every byte written, fsynced and hashed.
    const { bytes, sha256 } = await writer.finish()
    await rename(part, final)
    await fsyncDir(dir)
    done = true
    return { bytes, sha256 }
  } catch (error) {
    throw isLocalFsError(error) ? localError(error, part) : error
  } finally {
    if (!done) {
      await writer?.close()
      await removeQuietly(part)
    }
  }
}

/**
 * Hands the body's chunks to the writer as they come (no intermediate stream), pausing the body
 * while the writer is behind.
 */
function copyBody(body: Readable, writer: FileWriter<boolean>, onData: () => void): Promise<void> {
  body.on('data', (chunk: Buffer) => {
    const wait = writer.write(chunk)
    onData()
    if (wait) {
      body.pause()
      wait.then(
        () => body.resume(),
        (error: unknown) => body.destroy(error as Error)
      )
    }
  })
  return finished(body)
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
