import { readdir, stat } from 'node:fs/promises'
import { basename, join, resolve } from 'node:path'
import { UsageError } from '../../lib/errors.js'
import { XvaVerificationError } from '../transfer/retry.js'
import { notAnArchive, sniffArchive } from '../transfer/sniff-archive.js'

/** File names vm-import takes from `--dir`. */
export const XVA_FILE = /\.xva(\.gz|\.zst)?$/

/**
 * The files to import: the arguments (in order; a missing one is reported by its job) followed
 * by the `.xva`, `.xva.gz` and `.xva.zst` files of `--dir` (sorted). Throws {@link UsageError}
 * when `--dir` cannot be read or nothing at all was named.
 */
export async function collectFiles(
  args: readonly string[],
  dir: string | undefined
): Promise<string[]> {
  const files = args.map((f) => resolve(f))
  if (dir !== undefined) {
    let names: string[]
    try {
      const s = await stat(dir)
      if (!s.isDirectory()) throw new UsageError(`--dir ${dir} is not a directory`)
      names = await readdir(dir)
    } catch (error) {
      if (error instanceof UsageError) throw error
      throw new UsageError(`cannot read --dir ${dir}: ${(error as Error).message}`, {
        cause: error,
      })
    }
    const found = names.filter((n) => XVA_FILE.test(n)).sort()
    if (found.length === 0 && files.length === 0) {
      throw new UsageError(`--dir ${dir} holds no .xva, .xva.gz or .xva.zst file`)
    }
    files.push(...found.map((n) => resolve(join(dir, n))))
  }
  if (files.length === 0) throw new UsageError('name the files to import, or --dir DIR')
  return [...new Set(files)]
}

/** A short label for a file in messages. */
export function fileLabel(path: string): string {
  return basename(path)
}

/** The size of a file to import; rejects with a plain message (and its `code`) when it is not one. */
export async function fileSize(file: string): Promise<number> {
  let s
  try {
    s = await stat(file)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    throw Object.assign(
      new Error(
        code === 'ENOENT' ? `${file}: no such file` : `${file}: ${(error as Error).message}`,
        { cause: error }
      ),
      code === undefined ? {} : { code }
    )
  }
  if (s.isDirectory()) {
    throw Object.assign(new Error(`${file} is a directory, not a file`), { code: 'EISDIR' })
  }
  if (!s.isFile()) throw new Error(`${file} is not a regular file`)
  return s.size
}

/**
 * What a dry run checks of a file without reading it all: a regular, readable file whose first
 * bytes are an XVA's (plain, gzip or zstd). Rejects with the reason.
 */
export async function checkFile(file: string): Promise<void> {
  await fileSize(file)
  const why = notAnArchive(await sniffArchive(file))
  if (why !== undefined) throw new XvaVerificationError(why)
}
