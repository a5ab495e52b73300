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
 * Destroys the destination networks that a stream import made (xapi marks them
 * `other_config:import_task`: no network of the VIF's name or bridge existed) and that nothing
 * uses once the copies' VIFs were moved to the mapped networks. Run once the batch is over, so
 * that no import of this run is still choosing networks. Never throws: what cannot be removed is
 * reported in a `network-cleanup` event.
 */
export async function removeImportedNetworks(
  dest: MigrateXapi,
  candidates: Iterable<string>,
  emit: (event: MigrateEvent) => void
): Promise<void> {
  const signal = AbortSignal.timeout(60_000)
  for (const ref of new Set(candidates)) {
    let net: NetworkRecord
    try {
      net = await dest.call<NetworkRecord>('network.get_record', [ref], { signal })
    } catch (error) {
      if (xapiCode(error) === 'HANDLE_INVALID') continue
      emit({ kind: 'network-cleanup', network: ref, error: describeError(error) })
      continue
    }
    if (!net.other_config.import_task || net.VIFs.length > 0 || net.PIFs.length > 0) continue
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
