import { describeError } from '../../lib/errors.js'
import { failureCode, type ItemResult } from '../../lib/results.js'
import { checkFile } from './files.js'

/**
 * The results of a dry run: each file looked at ({@link checkFile}: readable, an XVA's first
 * bytes), not verified through; a good one is `skipped` ("dry run"), a bad one `failed`.
 */
export function dryRunResults(files: readonly string[]): Promise<ItemResult[]> {
  return Promise.all(
    files.map(async (file): Promise<ItemResult> => {
      try {
        await checkFile(file)
        return { file, status: 'skipped', action: 'none', error: 'dry run' }
      } catch (error) {
        return {
          file,
          status: 'failed',
          action: 'none',
          error: describeError(error),
          ...failureCode(error),
        }
      }
    })
  )
}
