import { rename, unlink } from 'node:fs/promises'
import { dirname } from 'node:path'
import type { Duplex, Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { FileWriter, type FileWriterOptions, type FileWritten } from '../file/file-writer.js'
import { syncDir } from '../file/sync-dir.js'
import type { Ref } from '@xapi-ops/xapi-formats'
import type { XapiClient } from '../client.js'
import type { TransferClient } from './client-shape.js'
import {
  createClientCompressor,
  resolveClientCompression,
  type ClientCompression,
} from './client-compression.js'
import { openExport, type OpenedExport } from './export-open.js'
import { readExportInPlace } from './export-in-place.js'
import { streamBody } from './export-vm.js'
import { resolveExportOptions, type ExportVmOptions } from './options.js'
import type { TransferRun } from './run.js'
import { askedCompression } from './verify.js'

/** Options of {@link exportVmToFile}: those of `exportVm` and of `FileWriter`, and where to compress. */
export type ExportVmToFileOptions<Hash extends boolean = false> = ExportVmOptions &
  FileWriterOptions<Hash> & {
    /**
     * Compress here rather than on the host (with `compression: 'none'`): the archive is verified
     * as it arrives, then compressed with zstd on this machine's cores into the file.
     */
    readonly clientCompression?: ClientCompression
  }

/**
 * Exports a VM into a file: `exportVm` (verified in flight unless `verify: false`) written by a
 * {@link FileWriter} into `<path>.part`, renamed to `path` only once every byte is written
 * (fsynced with `fsync: true`) and the XAPI task succeeded. On any failure or abort the `.part`
 * file is removed, the task cancelled and destroyed, and the error is what `exportVm`'s `task`
 * would reject with (or the file system's, with its `code`).
 *
 * Over `http:` and the dom0 socket the socket reads straight into the file writer's ring and the
 * verifier looks at the bytes there: no buffer allocated per read, no copy, no stream in between
 * (on 2 cores about 1.5× the throughput of `exportVm` piped into `writeToFile`).
 * Over `https:` the body goes through `exportVm`'s stream.
 *
 * @example
 * const { bytes, sha256 } = await exportVmToFile(xapi, vm, '/srv/xva/web.xva.zst', {
 *   compression: 'zstd', fsync: true, sha256: true, signal,
 * })
 */
export async function exportVmToFile<Hash extends boolean = false>(
  client: XapiClient | TransferClient,
  vm: Ref<'VM'>,
  path: string,
  options: ExportVmToFileOptions<Hash> = {}
): Promise<FileWritten<Hash>> {
  const o = resolveExportOptions(options)
  const zstd = resolveClientCompression(options.clientCompression, o.compression)
  o.signal?.throwIfAborted()
  const part = `${path}.part`
  // The file first: one that cannot be written is known before anything happens on the pool.
  const writer = await FileWriter.open<Hash>(part, options)
  try {
    const opened = await openExport(client, vm, o, { directReads: !zstd })
    const http =
      opened.conn.direct && !opened.chunked && !zstd
        ? readInPlace(opened, writer, o)
        : readStream(opened, writer, o, zstd && createClientCompressor(zstd))
    await opened.run.conclude(http)
    const written = await writer.finish()
    await rename(part, path)
    if (options.fsync) await syncDir(dirname(path))
    return written
  } catch (error) {
    await writer.close()
    await unlink(part).catch(() => {})
    throw error
  }
}

type Resolved = ReturnType<typeof resolveExportOptions>

/**
 * The body through `exportVm`'s stream (TLS, chunked responses), and through `compressor` when
 * compressing here.
 */
async function readStream(
  opened: OpenedExport,
  writer: FileWriter<boolean>,
  o: Resolved,
  compressor: Duplex | undefined
) {
  const { run, conn, chunked } = opened
  const { body, done } = streamBody(run, conn, {
    ...o,
    chunked,
    expectCompression: askedCompression(o),
  })
  if (!compressor) return void (await Promise.all([done, copy(body, writer, run)]))
  // Its error is the one to report, not the body's destruction that follows.
  compressor.once('error', (error) => run.fail(error))
  await Promise.all([
    done,
    pipeline(body, compressor, (compressed: AsyncIterable<Buffer>) =>
      copy(compressed, writer, run)
    ),
  ])
}

async function copy(
  body: Readable | AsyncIterable<Buffer>,
  writer: FileWriter<boolean>,
  run: TransferRun
) {
  const failed = (error: unknown) => {
    // Before the loop's exit destroys the body: the writer's error is the one to report.
    run.fail(error)
    throw error
  }
  for await (const chunk of body) {
    const wait = writer.write(chunk as Buffer)
    if (wait) await wait.catch(failed)
  }
}

/**
 * The body read in place: the socket reads into the file writer's ring (`reserve`/`commit`), or
 * into the connection's read ring and is copied from there while the writer's ring is full (the
 * socket then holds until it has room).
 */
function readInPlace(
  opened: OpenedExport,
  writer: FileWriter<boolean>,
  o: Resolved
): Promise<void> {
  const { run } = opened
  return readExportInPlace(
    opened,
    {
      verify: o.verify,
      metadataOnly: o.metadataOnly,
      compressed: o.compression !== 'none',
      expectCompression: askedCompression(o),
    },
    {
      // Reads land in the file writer's ring while it has room: no copy at all.
      target: () => writer.reserve(),
      onData(view, placed, flow) {
        if (placed) return writer.commit(view.length)
        const wait = writer.write(view)
        if (!wait) return
        flow.hold('peer')
        wait.then(
          () => flow.release('peer'),
          (error: unknown) => run.fail(error)
        )
      },
    }
  )
}
