// The record fields vm-migrate reads (wire names). Structural and minimal, so the operation does
// not depend on the client's full record types; int64 fields may arrive as strings over XML-RPC.

type StrMap = Readonly<Record<string, string>>
type IntLike = number | string

export type MPool = {
  readonly uuid: string
  readonly name_label: string
  readonly master: string
  readonly default_SR: string
}

export type MHost = {
  readonly uuid: string
  readonly name_label: string
  readonly enabled: boolean
  readonly address?: string
  readonly metrics?: string
  readonly PIFs?: readonly string[]
}

export type MVm = {
  readonly uuid: string
  readonly name_label: string
  readonly power_state: string
  readonly is_a_template: boolean
  readonly is_a_snapshot: boolean
  readonly is_control_domain: boolean
  readonly resident_on: string
  readonly tags?: readonly string[]
  readonly other_config?: StrMap
  readonly allowed_operations?: readonly string[]
  readonly VBDs: readonly string[]
  readonly VIFs: readonly string[]
  readonly suspend_VDI?: string
  readonly snapshots?: readonly string[]
}

export type MVbd = {
  readonly uuid: string
  readonly VM: string
  readonly VDI: string
  readonly type: string
  readonly userdevice: string
  readonly empty?: boolean
}

export type MVdi = {
  readonly uuid: string
  readonly name_label: string
  readonly SR: string
  readonly virtual_size: IntLike
  readonly physical_utilisation: IntLike
}

export type MSr = {
  readonly uuid: string
  readonly name_label: string
  readonly type?: string
  readonly content_type?: string
  readonly physical_size: IntLike
  readonly physical_utilisation: IntLike
}

export type MVif = {
  readonly uuid: string
  readonly device: string
  readonly network: string
  readonly VM: string
  readonly MAC: string
  readonly MTU?: IntLike
}

export type MNetwork = {
  readonly uuid: string
  readonly name_label: string
}

export type MPif = {
  readonly uuid: string
  readonly host: string
  readonly network: string
  readonly management: boolean
}

/** Everything the plan reads from one pool, by class: ref → record. */
export type PoolInventory = {
  readonly poolRef: string
  readonly pool: MPool
  readonly hosts: ReadonlyMap<string, MHost>
  readonly vms: ReadonlyMap<string, MVm>
  readonly vbds: ReadonlyMap<string, MVbd>
  readonly vdis: ReadonlyMap<string, MVdi>
  readonly srs: ReadonlyMap<string, MSr>
  readonly vifs: ReadonlyMap<string, MVif>
  readonly networks: ReadonlyMap<string, MNetwork>
  readonly pifs: ReadonlyMap<string, MPif>
}

/** int64 field → number (XML-RPC sends them as untyped strings). */
export function toInt(value: IntLike | undefined): number {
  const n = typeof value === 'string' ? Number(value) : (value ?? 0)
  return Number.isFinite(n) ? n : 0
}

/** Whether `ref` is XAPI's null reference (or empty). */
export function isNull(ref: string | undefined): boolean {
  return ref === undefined || ref === '' || ref === 'OpaqueRef:NULL'
}

/** other_config key set on the source VM before a copy; the copy carries it to the destination. */
export const MIGRATE_MARKER = 'xapi-ops-migrated-from'

/**
 * other_config key set on a source VM before a stream copy shuts it down (value: when), removed
 * once it is running again or its copy is verified. A run killed in between leaves it: the next
 * run, journal or not, then knows the halted VM was running (it starts the copy with `--start`,
 * restarts the source on failure). The export carries it: the copy's is removed.
 */
export const SHUTDOWN_MARKER = 'xapi-ops-shut-down-for-migration'

/**
 * other_config key set on a copy once it is verified: `<source uuid>/<method>`. A copy carrying
 * it for its source is never removed as a partial copy: a rerun (journal or not) adopts it and
 * finishes the migration. Tied to the source's uuid, so that the key a copy carries on to a
 * later migration of its own means nothing there.
 */
export const VERIFIED_MARKER = 'xapi-ops-migration-verified'

/** Tag prefix of a source VM kept after its migration: `migrated-to:<pool>/<uuid>`. */
export const MIGRATED_TAG_PREFIX = 'migrated-to:'
