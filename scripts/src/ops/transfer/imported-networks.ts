import { describeError, errorCode } from '../../lib/errors.js'

type NetworkRecord = {
  readonly uuid: string
  readonly name_label: string
  readonly VIFs: readonly string[]
  readonly PIFs: readonly string[]
  readonly other_config: Readonly<Record<string, string>>
}

/** What {@link removeImportedNetworks} needs of a pool's client (`call` takes the session itself). */
export type NetworkCleanupXapi = {
  getAllRecords(
    cls: 'network',
    options: { readonly signal: AbortSignal }
  ): Promise<ReadonlyMap<string, unknown>>
  call(
    method: 'network.destroy',
    params: [string],
    options: { readonly signal: AbortSignal }
  ): Promise<unknown>
}

/**
 * One network handled (or, without `network`, the listing that failed): the payload of
 * vm-migrate's and vm-import's `network-cleanup` events.
 */
export type NetworkCleanup = {
  readonly network?: string
  readonly name?: string
  readonly error?: string
}

/**
 * Destroys the networks that imports made and nothing uses: xapi's import makes a network when
 * none has the VIF's name or bridge, and marks it `other_config:import_task` with the import's
 * task; a failed import (with `force`, or cut off) leaves it, and vm-migrate moves its copies'
 * VIFs to the mapped networks. Only networks of `importTasks` and without any VIF or PIF are
 * touched. Run once the batch is over, so that no import of the run is still choosing networks
 * (an import takes a network of the right name, whoever made it). Never throws: each outcome is
 * reported.
 */
export async function removeImportedNetworks(
  xapi: NetworkCleanupXapi,
  importTasks: ReadonlySet<string>,
  report: (outcome: NetworkCleanup) => void
): Promise<void> {
  if (importTasks.size === 0) return
  const signal = AbortSignal.timeout(60_000)
  let networks: ReadonlyMap<string, NetworkRecord>
  try {
    networks = (await xapi.getAllRecords('network', { signal })) as ReadonlyMap<
      string,
      NetworkRecord
    >
  } catch (error) {
    report({ error: describeError(error) })
    return
  }
  for (const [ref, net] of networks) {
    const task = net.other_config?.import_task
    if (task === undefined || !importTasks.has(task)) continue
    if (net.VIFs.length > 0 || net.PIFs.length > 0) continue
    try {
      await xapi.call('network.destroy', [ref], { signal })
      report({ network: net.uuid, name: net.name_label })
    } catch (error) {
      if (errorCode(error) === 'HANDLE_INVALID') continue
      report({ network: net.uuid, name: net.name_label, error: describeError(error) })
    }
  }
}

/** The human line of a `network-cleanup` event. */
export function formatNetworkCleanup(event: NetworkCleanup): string {
  if (event.network === undefined)
    return `networks made by imports: could not list them: ${event.error ?? ''}`
  return event.error
    ? `network ${event.name ?? event.network}: made by an import, could not be removed: ${event.error}`
    : `network ${event.name ?? event.network} (${event.network}): made by an import and unused, removed`
}
