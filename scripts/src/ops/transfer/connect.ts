import { connect, type XapiClient } from '@xapi-ops/xapi'
import type { ConnectionSettings } from '../../lib/connection-options.js'

/**
 * Logs in to the pool named by the resolved connection options. `readOnly` (dry runs) makes the
 * client refuse every call that is not a getter.
 */
export function connectPool(
  settings: ConnectionSettings,
  options: { readonly readOnly: boolean; readonly signal?: AbortSignal }
): Promise<XapiClient> {
  return connect({
    url: settings.url,
    user: settings.user,
    password: settings.password,
    ...(settings.ca === undefined ? {} : { ca: settings.ca }),
    ...(settings.fingerprint === undefined ? {} : { fingerprint: settings.fingerprint }),
    allowUnauthorized: settings.insecure,
    readOnly: options.readOnly,
    originator: 'xapi-ops',
    ...(options.signal === undefined ? {} : { signal: options.signal }),
  })
}
