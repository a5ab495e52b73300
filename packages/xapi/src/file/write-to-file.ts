import { rename, unlink } from 'node:fs/promises'
import { dirname } from 'node:path'
import { addAbortSignal, Readable } from 'node:stream'
import { FileWriter, type FileWriterOptions, type FileWritten } from './file-writer.js'
import { syncDir } from './sync-dir.js'

/** Options of {@link writeToFile}. */
export type WriteToFileOptions<Hash extends boolean = boolean> = FileWriterOptions<Hash> & {
  readonly signal?: AbortSignal
  /**
   * Settles before the file is put in place: the file is renamed to `path` only if it resolves.
   * Give it the `task` of `exportVm`, which can still fail after the last byte came.
   */
  readonly confirm?: Promise<unknown>
}

/**
 * Writes `source` to `path` through a {@link FileWriter}: into `<path>.part`, fsynced when asked,
 * renamed to `path` once the source ended and `confirm` resolved. On failure the `.part` file
 * is removed: `path` is the whole file or nothing.
 *
 * @example
 * const { body, task } = await exportVm(client, vm, { signal })
 * await writeToFile(body, 'vm.xva', { confirm: task, fsync: true, signal })
 */
export async function writeToFile<Hash extends boolean = false>(
  source: AsyncIterable<Uint8Array> | Readable,
  path: string,
  options: WriteToFileOptions<Hash> = {}
): Promise<FileWritten<Hash>> {
  const { signal, confirm } = options
  signal?.throwIfAborted()
  confirm?.catch(() => {})
  const part = `${path}.part`
  if (signal && source instanceof Readable) addAbortSignal(signal, source)
  let writer: FileWriter<Hash> | undefined
  try {
    writer = await FileWriter.open(part, options)
    for await (const chunk of source) {
      const wait = writer.write(chunk)
      if (wait) await wait
    }
    signal?.throwIfAborted()
    const written = await writer.finish()
    await confirm
    await rename(part, path)
    if (options.fsync) await syncDir(dirname(path))
    return written
  } catch (error) {
    await writer?.close()
    await unlink(part).catch(() => {})
    if (source instanceof Readable) source.destroy()
    throw signal?.aborted ? signal.reason : error
  }
}
