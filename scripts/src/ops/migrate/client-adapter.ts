import { exportVm, importVm, type Ref, type XapiClient } from '@xapi-ops/xapi'
import type { MigrateXapi } from './xapi.js'

/** Adapts an `XapiClient` (and the transfer API on it) to what vm-migrate uses. */
export function adaptClient(client: XapiClient): MigrateXapi {
  const opts = (o?: { signal?: AbortSignal }) => (o?.signal ? { signal: o.signal } : {})
  return {
    call: (method, params, o) => client.callWith(method, [...params], opts(o)),
    callAsync: (method, params, o) => client.callAsync(method, [...params], opts(o)),
    watchTask: (ref, o) => client.watchTask(ref as Ref<'task'>, opts(o)),
    async getAllRecords<R>(cls: string, o?: { signal?: AbortSignal }) {
      const all = await client.callWith<Record<string, R>>(`${cls}.get_all_records`, [], opts(o))
      return new Map(Object.entries(all))
    },
    exportVm: (vm, o) =>
      exportVm(client, vm as Ref<'VM'>, {
        ...opts(o),
        ...(o.preservePowerState !== undefined && { preservePowerState: o.preservePowerState }),
        ...(o.onProgress && { onProgress: o.onProgress }),
      }),
    importVm: (source, o) =>
      importVm(client, source, {
        ...opts(o),
        sr: o.sr as Ref<'SR'>,
        ...(o.onProgress && { onProgress: o.onProgress }),
      }),
  }
}
