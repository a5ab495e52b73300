import { describeError } from '../../lib/errors.js'
import type { MigrateEvent } from './events.js'
import { xapiCode, type MigrateXapi } from './xapi.js'

type NetworkRecord = {
  readonly uuid: string
  readonly name_label: string
  readonly VIFs: readonly string[]
  readonly PIFs: readonly string[]
  readonly other_config: Readonly<Record<string, string>>
}

/**
 * Destroys the destination networks that stream imports made and nothing uses: xapi's import
 * makes a network when none has the VIF's name or bridge, and marks it `other_config:import_task`
 * with the import's task; the copies' VIFs were then moved to the mapped networks. Only networks
 * of `importTasks` (this run's imports and those a crashed run recorded in the journal) and
 * without any VIF or PIF are touched. Run once the batch is over, so that no import of this run
 * is still choosing networks. Never throws: what cannot be removed is reported in a
 * `network-cleanup` event.
 */
export async function removeImportedNetworks(
  dest: MigrateXapi,
  importTasks: ReadonlySet<string>,
  emit: (event: MigrateEvent) => void
): Promise<void> {
  if (importTasks.size === 0) return
  const signal = AbortSignal.timeout(60_000)
  let networks: ReadonlyMap<string, NetworkRecord>
  try {
    networks = await dest.getAllRecords<NetworkRecord>('network', { signal })
  } catch (error) {
    emit({ kind: 'network-cleanup', error: describeError(error) })
    return
  }
  for (const [ref, net] of networks) {
    const task = net.other_config?.import_task
    if (task === undefined || !importTasks.has(task)) continue
    if (net.VIFs.length > 0 || net.PIFs.length > 0) continue
    try {
      await dest.call('network.destroy', [ref], { signal })
      emit({ kind: 'network-cleanup', network: net.uuid, name: net.name_label })
    } catch (error) {
      if (xapiCode(error) === 'HANDLE_INVALID') continue
      emit({
        kind: 'network-cleanup',
        network: net.uuid,
        name: net.name_label,
        error: describeError(error),
      })
    }
  }
}
