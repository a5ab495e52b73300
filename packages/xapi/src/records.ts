import type { Ref } from '@xapi-ops/xapi-formats'
import { parseXapiDate } from '@xapi-ops/xapi-formats'

// Record shapes with XAPI's wire field names (ocaml/idl/datamodel*.ml). Only the fields ops tooling
// reads are listed; the index signature keeps the rest reachable as `unknown`. int64 fields are
// numbers and datetimes are Dates whichever transport was used (see normalizeRecord).

type StrMap = Record<string, string>
type Base = { readonly [field: string]: unknown; uuid: string }

/** `pool` */
export type PoolRecord = Base & {
  name_label: string
  name_description: string
  master: Ref<'host'>
  default_SR: Ref<'SR'>
  suspend_image_SR: Ref<'SR'>
  crash_dump_SR: Ref<'SR'>
  ha_enabled: boolean
  migration_compression: boolean
  other_config: StrMap
  tags: string[]
}

/** `host` */
export type HostRecord = Base & {
  name_label: string
  name_description: string
  hostname: string
  address: string
  enabled: boolean
  resident_VMs: Ref<'VM'>[]
  metrics: Ref<'host_metrics'>
  PBDs: Ref<'PBD'>[]
  PIFs: Ref<'PIF'>[]
  API_version_major: number
  API_version_minor: number
  software_version: StrMap
  allowed_operations: string[]
  current_operations: Record<string, string>
  memory_overhead: number
  other_config: StrMap
  tags: string[]
}

/** `host_metrics` */
export type HostMetricsRecord = Base & {
  memory_total: number
  memory_free: number
  live: boolean
  last_updated: Date
  other_config: StrMap
}

export type VmPowerState = 'Halted' | 'Paused' | 'Running' | 'Suspended'

/** `VM` */
export type VmRecord = Base & {
  name_label: string
  name_description: string
  power_state: VmPowerState
  is_a_template: boolean
  is_default_template: boolean
  is_control_domain: boolean
  is_a_snapshot: boolean
  snapshot_of: Ref<'VM'>
  snapshots: Ref<'VM'>[]
  snapshot_time: Date
  parent: Ref<'VM'>
  resident_on: Ref<'host'>
  scheduled_to_be_resident_on: Ref<'host'>
  affinity: Ref<'host'>
  domid: number
  other_config: StrMap
  tags: string[]
  allowed_operations: string[]
  current_operations: Record<string, string>
  blocked_operations: Record<string, string>
  VBDs: Ref<'VBD'>[]
  VIFs: Ref<'VIF'>[]
  suspend_VDI: Ref<'VDI'>
  suspend_SR: Ref<'SR'>
  metrics: Ref<'VM_metrics'>
  guest_metrics: string
  ha_restart_priority: string
  ha_always_run: boolean
  appliance: Ref<'VM_appliance'>
  order: number
  start_delay: number
  shutdown_delay: number
  memory_static_max: number
  memory_static_min: number
  memory_dynamic_max: number
  memory_dynamic_min: number
  memory_target: number
  memory_overhead: number
  VCPUs_max: number
  VCPUs_at_startup: number
  domain_type: string
  user_version: number
  version: number
  actions_after_shutdown: string
  actions_after_reboot: string
  actions_after_crash: string
}

/** `VM_metrics` */
export type VmMetricsRecord = Base & {
  memory_actual: number
  VCPUs_number: number
  state: string[]
  start_time: Date
  install_time: Date
  last_updated: Date
  other_config: StrMap
}

/** `VM_appliance` (vApp) */
export type VmApplianceRecord = Base & {
  name_label: string
  name_description: string
  VMs: Ref<'VM'>[]
  allowed_operations: string[]
  current_operations: Record<string, string>
}

/** `VBD` */
export type VbdRecord = Base & {
  VM: Ref<'VM'>
  VDI: Ref<'VDI'>
  device: string
  userdevice: string
  bootable: boolean
  mode: 'RO' | 'RW'
  type: 'CD' | 'Disk' | 'Floppy'
  empty: boolean
  currently_attached: boolean
  other_config: StrMap
}

/** `VDI` */
export type VdiRecord = Base & {
  name_label: string
  name_description: string
  SR: Ref<'SR'>
  VBDs: Ref<'VBD'>[]
  virtual_size: number
  physical_utilisation: number
  type: string
  sharable: boolean
  read_only: boolean
  is_a_snapshot: boolean
  snapshot_of: Ref<'VDI'>
  snapshots: Ref<'VDI'>[]
  snapshot_time: Date
  managed: boolean
  missing: boolean
  sm_config: StrMap
  other_config: StrMap
  tags: string[]
}

/** `SR` */
export type SrRecord = Base & {
  name_label: string
  name_description: string
  type: string
  content_type: string
  shared: boolean
  VDIs: Ref<'VDI'>[]
  PBDs: Ref<'PBD'>[]
  physical_size: number
  physical_utilisation: number
  virtual_allocation: number
  other_config: StrMap
  sm_config: StrMap
  tags: string[]
}

/** `PBD` */
export type PbdRecord = Base & {
  host: Ref<'host'>
  SR: Ref<'SR'>
  device_config: StrMap
  currently_attached: boolean
  other_config: StrMap
}

/** `VIF` */
export type VifRecord = Base & {
  device: string
  network: Ref<'network'>
  VM: Ref<'VM'>
  MAC: string
  MTU: number
  currently_attached: boolean
  locking_mode: string
  other_config: StrMap
}

/** `network` */
export type NetworkRecord = Base & {
  name_label: string
  name_description: string
  bridge: string
  MTU: number
  VIFs: Ref<'VIF'>[]
  PIFs: Ref<'PIF'>[]
  other_config: StrMap
  tags: string[]
}

/** `PIF` */
export type PifRecord = Base & {
  device: string
  network: Ref<'network'>
  host: Ref<'host'>
  MAC: string
  MTU: number
  VLAN: number
  IP: string
  netmask: string
  gateway: string
  IPv6: string[]
  management: boolean
  currently_attached: boolean
  other_config: StrMap
}

export type TaskStatus = 'pending' | 'success' | 'failure' | 'cancelling' | 'cancelled'

/** `task` */
export type TaskRecord = Base & {
  name_label: string
  name_description: string
  status: TaskStatus
  progress: number
  created: Date
  finished: Date
  /** An XML-RPC `<value>` fragment; `callAsync` decodes it. */
  result: string
  error_info: string[]
  allowed_operations: string[]
  current_operations: Record<string, string>
  resident_on: Ref<'host'>
  subtask_of: Ref<'task'>
  subtasks: Ref<'task'>[]
  other_config: StrMap
}

/** Class name → record type, for the classes typed here. */
export type XapiRecords = {
  pool: PoolRecord
  host: HostRecord
  host_metrics: HostMetricsRecord
  VM: VmRecord
  VM_metrics: VmMetricsRecord
  VM_appliance: VmApplianceRecord
  VBD: VbdRecord
  VDI: VdiRecord
  SR: SrRecord
  PBD: PbdRecord
  VIF: VifRecord
  network: NetworkRecord
  PIF: PifRecord
  task: TaskRecord
}

/** An XAPI class with a typed record. */
export type XapiClass = keyof XapiRecords

/** The record type of class `C` (with its `$ref`-less wire fields). */
export type RecordOf<C extends XapiClass> = XapiRecords[C]

// prettier-ignore
const INT_FIELDS: Partial<Record<string, readonly string[]>> = {
  host: ['API_version_major', 'API_version_minor', 'memory_overhead'],
  host_metrics: ['memory_total', 'memory_free'],
  VM: ['domid', 'order', 'start_delay', 'shutdown_delay', 'memory_static_max', 'memory_static_min',
    'memory_dynamic_max', 'memory_dynamic_min', 'memory_target', 'memory_overhead', 'VCPUs_max',
    'VCPUs_at_startup', 'user_version', 'version'],
  VM_metrics: ['memory_actual', 'VCPUs_number'],
  VDI: ['virtual_size', 'physical_utilisation'],
  SR: ['physical_size', 'physical_utilisation', 'virtual_allocation'],
  VIF: ['MTU'],
  network: ['MTU'],
  PIF: ['MTU', 'VLAN'],
}

// prettier-ignore
const DATE_FIELDS: Partial<Record<string, readonly string[]>> = {
  host_metrics: ['last_updated'],
  VM: ['snapshot_time'],
  VM_metrics: ['start_time', 'install_time', 'last_updated'],
  VDI: ['snapshot_time'],
  task: ['created', 'finished'],
}

const CLASS_BY_LOWER = new Map<string, string>(
  [
    'pool',
    'host',
    'host_metrics',
    'VM',
    'VM_metrics',
    'VM_appliance',
    'VBD',
    'VDI',
    'SR',
    'PBD',
    'VIF',
    'network',
    'PIF',
    'task',
  ].map((c) => [c.toLowerCase(), c])
)

/** The datamodel spelling of a class name in any case (`vm` → `VM`), or the name as given. */
export function canonicalClassName(cls: string): string {
  return CLASS_BY_LOWER.get(cls.toLowerCase()) ?? cls
}

/**
 * Makes a record's types independent of the transport, in place: XML-RPC sends int64 as untyped
 * strings and JSON-RPC sends datetimes as strings.
 */
export function normalizeRecord<T>(cls: string, record: T): T {
  if (typeof record !== 'object' || record === null) return record
  const r = record as Record<string, unknown>
  const name = canonicalClassName(cls)
  for (const f of INT_FIELDS[name] ?? []) {
    const v = r[f]
    if (typeof v === 'string' && /^-?\d+$/.test(v)) r[f] = Number(v)
  }
  for (const f of DATE_FIELDS[name] ?? []) {
    const v = r[f]
    if (typeof v === 'string') {
      const d = parseXapiDate(v)
      if (d !== undefined) r[f] = d
    }
  }
  return record
}
