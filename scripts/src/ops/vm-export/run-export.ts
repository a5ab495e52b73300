import { setMaxListeners } from 'node:events'
import { join } from 'node:path'
import PQueue from 'p-queue'
import type { ItemResult } from '../../lib/results.js'
import { runExportJob, type ExportJobContext } from './export-job.js'
import type { ExportItem } from './plan.js'

/** Transfers one host serves at once (issue 6). */
export const PER_HOST_LIMIT = 2

/**
 * Runs the export jobs: at most `concurrency` at once, and at most `perHostLimit` per host.
 * After an interrupt, jobs in flight clean up and report `failed`, queued ones `skipped`.
 * Results come in the order of `items`.
 */
export async function exportVms(
  items: readonly ExportItem[],
  ctx: ExportJobContext,
  options: {
    readonly concurrency: number
    readonly perHostLimit?: number
    readonly signal: AbortSignal
  }
): Promise<ItemResult[]> {
  const { signal } = options
  // Every queued job listens to the run's signal.
  setMaxListeners(0, signal)
  const global = new PQueue({ concurrency: options.concurrency })
  const hosts = new Map<string, PQueue>()
  const queueOf = (host: string) => {
    let queue = hosts.get(host)
    if (!queue) {
      queue = new PQueue({ concurrency: options.perHostLimit ?? PER_HOST_LIMIT })
      hosts.set(host, queue)
    }
    return queue
  }
  const results: ItemResult[] = new Array<ItemResult>(items.length)
  await Promise.all(
    items.map(async (item, index) => {
      try {
        if (signal.aborted) {
          results[index] = notStarted(item, ctx)
          return
        }
        if (item.action === 'skip') {
          results[index] = await runExportJob(item, ctx, signal)
          return
        }
        // A host slot is held while waiting for a global one, never the other way round: a
        // busy host then never keeps the other hosts' exports waiting. No `signal` for p-queue:
        // it would reject a running job at once, before the job has cleaned up.
        results[index] = await queueOf(item.host).add(() =>
          global.add(() =>
            signal.aborted ? notStarted(item, ctx) : runExportJob(item, ctx, signal)
          )
        )
      } finally {
        ctx.display.itemDone()
      }
    })
  )
  return results
}

function notStarted(item: ExportItem, ctx: ExportJobContext): ItemResult {
  return {
    vm: item.uuid,
    name: item.name,
    action: item.action,
    file: join(ctx.dir, item.file),
    status: 'skipped',
    error: 'interrupted before it started',
  }
}
