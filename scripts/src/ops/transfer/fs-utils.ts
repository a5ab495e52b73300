import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { open, rename, unlink } from 'node:fs/promises'
import { dirname } from 'node:path'
import { pipeline } from 'node:stream/promises'

let tmpCounter = 0

/** fsyncs a directory so that a rename in it survives a crash (best effort where unsupported). */
export async function fsyncDir(dir: string): Promise<void> {
  let handle
  try {
    handle = await open(dir, 'r')
    await handle.sync()
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code !== 'EISDIR' && code !== 'EINVAL' && code !== 'EPERM') throw error
  } finally {
    await handle?.close()
  }
}

/**
 * Writes `text` to `path` atomically: a temporary file in the same directory, fsynced, renamed
 * over `path`, then the directory fsynced. Readers see the old or the new content, never a mix.
 */
export async function writeFileAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${++tmpCounter}`
  const handle = await open(tmp, 'w', 0o644)
  try {
    await handle.writeFile(text, 'utf8')
    await handle.sync()
  } catch (error) {
    await handle.close().catch(() => {})
    await removeQuietly(tmp)
    throw error
  }
  await handle.close()
  try {
    await rename(tmp, path)
  } catch (error) {
    await removeQuietly(tmp)
    throw error
  }
  await fsyncDir(dirname(path))
}

/** Deletes a file, ignoring a missing one (and any other error: it is cleanup). */
export async function removeQuietly(path: string): Promise<void> {
  await unlink(path).catch(() => {})
}

/** The SHA-256 (hex) of a file. */
export async function fileSha256(path: string, signal?: AbortSignal): Promise<string> {
  const hash = createHash('sha256')
  await pipeline(createReadStream(path), hash, signal ? { signal } : {})
  return hash.digest('hex')
}
