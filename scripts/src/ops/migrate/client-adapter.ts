import { relayVm, type Ref, type XapiClient } from '@xapi-ops/xapi'
import type { MigrateXapi } from './xapi.js'

/** Adapts an `XapiClient` (and the transfer API on it) to what vm-migrate uses. */
export function adaptClient(client: XapiClient): MigrateXapi {
  const adapted = adapt(client)
  clients.set(adapted, client)
  return adapted
}

/** The client behind each adapted pool: a relay needs both ends' clients. */
const clients = new WeakMap<MigrateXapi, XapiClient>()

function adapt(client: XapiClient): MigrateXapi {
  const opts = (o?: { signal?: AbortSignal }) => (o?.signal ? { signal: o.signal } : {})
  return {
    call: (method, params, o) => client.callWith(method, [...params], opts(o)),
    callAsync: (method, params, o) => client.callAsync(method, [...params], opts(o)),
    watchTask: (ref, o) => client.watchTask(ref as Ref<'task'>, opts(o)),
    logoutSession: (ref, o) => client.logoutSession(ref, opts(o)),
    async getAllRecords<R>(cls: string, o?: { signal?: AbortSignal }) {
      const all = await client.callWith<Record<string, R>>(`${cls}.get_all_records`, [], opts(o))
      return new Map(Object.entries(all))
    },
    relayVm(dest, vm, o) {
      const target = clients.get(dest)
      if (!target) throw new TypeError('relayVm: the destination is not an adapted client')
      return relayVm(client, vm as Ref<'VM'>, target, {
        ...opts(o),
        sr: o.sr as Ref<'SR'>,
        ...(o.preservePowerState !== undefined && { preservePowerState: o.preservePowerState }),
        ...(o.onProgress && { onProgress: o.onProgress }),
        ...(o.onExportTask && { onExportTask: o.onExportTask }),
        ...(o.onImportTask && { onImportTask: o.onImportTask }),
      })
    },
  }
}
