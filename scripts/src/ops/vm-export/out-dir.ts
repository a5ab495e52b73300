import { mkdir, open, stat, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { UsageError } from '../../lib/errors.js'

/**
 * Makes sure `--out` is a writable directory (creating it unless `create` is false, for dry
 * runs), by writing a probe file: permission bits do not stop root, a read-only mount does.
 * Throws {@link UsageError} (exit 2, nothing changed) otherwise.
 */
export async function prepareOutDir(
  dir: string,
  options: { readonly create: boolean }
): Promise<void> {
  const existing = await stat(dir).catch(() => undefined)
  if (existing !== undefined && !existing.isDirectory()) {
    throw new UsageError(`--out ${dir} is not a directory`)
  }
  if (options.create) {
    try {
      await mkdir(dir, { recursive: true })
    } catch (error) {
      throw new UsageError(`cannot create --out ${dir}: ${(error as Error).message}`, {
        cause: error,
      })
    }
  }
  try {
    const s = await stat(dir)
    if (!s.isDirectory()) throw new UsageError(`--out ${dir} is not a directory`)
  } catch (error) {
    if (error instanceof UsageError) throw error
    if (!options.create && (error as NodeJS.ErrnoException).code === 'ENOENT') return
    throw new UsageError(`cannot use --out ${dir}: ${(error as Error).message}`, { cause: error })
  }
  if (!options.create) return
  const probe = join(dir, `.vm-export-probe-${process.pid}`)
  try {
    const handle = await open(probe, 'wx')
    await handle.close()
    await unlink(probe)
  } catch (error) {
    await unlink(probe).catch(() => {})
    throw new UsageError(`--out ${dir} is not writable: ${(error as Error).message}`, {
      cause: error,
    })
  }
}
