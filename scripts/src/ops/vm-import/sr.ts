import { isNullRef, type Ref, type SrRecord, type XapiClient } from '@xapi-ops/xapi'
import { UsageError } from '../../lib/errors.js'

/** The SR imports go to. */
export type TargetSr = { readonly ref: Ref<'SR'>; readonly uuid: string; readonly name: string }

/**
 * Resolves `--sr` (uuid or exact name_label) or, without it, the pool's default SR. Throws
 * {@link UsageError} (exit 2, before any import) for an unknown, ambiguous or unusable SR.
 */
export async function resolveSr(
  client: XapiClient,
  wanted: string | undefined,
  signal?: AbortSignal
): Promise<TargetSr> {
  const srs = await client.getAllRecords('SR', { signal })
  const found = (ref: Ref<'SR'>, sr: SrRecord): TargetSr => {
    if (sr.content_type === 'iso') {
      throw new UsageError(
        `SR ${sr.name_label} (${sr.uuid}) is an ISO library: it cannot hold VM disks`
      )
    }
    return { ref, uuid: sr.uuid, name: sr.name_label }
  }
  if (wanted === undefined) {
    const pools = await client.getAllRecords('pool', { signal })
    const pool = [...pools.values()][0]
    const ref = pool?.default_SR
    const sr = ref === undefined || isNullRef(ref) ? undefined : srs.get(ref)
    if (ref === undefined || sr === undefined) {
      throw new UsageError('no --sr given and the pool has no default SR: pass --sr <uuid or name>')
    }
    return found(ref, sr)
  }
  const lower = wanted.toLowerCase()
  const byUuid = [...srs].find(([, sr]) => sr.uuid.toLowerCase() === lower)
  if (byUuid) return found(...byUuid)
  const byName = [...srs].filter(([, sr]) => sr.name_label === wanted)
  if (byName.length === 1) return found(...byName[0]!)
  if (byName.length > 1) {
    const uuids = byName.map(([, sr]) => sr.uuid).join(', ')
    throw new UsageError(
      `--sr ${JSON.stringify(wanted)} names ${byName.length} SRs (${uuids}): use a uuid`
    )
  }
  throw new UsageError(`--sr ${JSON.stringify(wanted)}: no SR with that uuid or name`)
}
