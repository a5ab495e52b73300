import { setMaxListeners } from 'node:events'
import PQueue from 'p-queue'
import type { ItemResult } from '../../lib/results.js'
import { removeImportedNetworks } from '../transfer/imported-networks.js'
import { runImportJob, type ImportJobContext } from './import-job.js'

/**
 * Imports the files, at most `concurrency` at once. After an interrupt, imports in flight are
 * cancelled (their VMs destroyed) and reported `failed`, queued ones `skipped`. Once all are
 * over, the networks that failed imports made and nothing uses are removed. Results come in the
 * order of `files`.
 */
export async function importFiles(
  files: readonly string[],
  ctx: ImportJobContext,
  options: { readonly concurrency: number; readonly signal: AbortSignal }
): Promise<ItemResult[]> {
  const { signal } = options
  setMaxListeners(0, signal)
  const queue = new PQueue({ concurrency: options.concurrency })
  const results = await Promise.all(
    files.map(async (file): Promise<ItemResult> => {
      try {
        // No `signal` for p-queue: it would reject a running job before it has cleaned up.
        return await queue.add((): ItemResult | Promise<ItemResult> =>
          signal.aborted
            ? { file, status: 'skipped', action: 'none', error: 'interrupted before it started' }
            : runImportJob(file, ctx, signal)
        )
      } finally {
        ctx.display.itemDone()
      }
    })
  )
  await removeImportedNetworks(
    {
      getAllRecords: (cls, opts) => ctx.client.getAllRecords(cls, opts),
      call: (method, params, opts) => ctx.client.callWith(method, params, opts),
    },
    ctx.failedImportTasks,
    (outcome) => ctx.emit({ kind: 'network-cleanup', ...outcome })
  )
  return results
}
