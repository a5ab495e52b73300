import { XapiFailure } from '../errors.js'
import type { SimRecord } from '../model/db.js'
import { RECORD_FACTORIES } from '../model/records.js'
import { refreshAppliance, refreshVm } from '../model/vm-state.js'
import { matchWhere, parseWhere } from './where.js'
import {
  METHODS,
  toBool,
  toFloat,
  toInt,
  toList,
  toMap,
  toStr,
  type CallCtx,
  type MethodSpec,
} from './registry.js'

/*
 * The messages xapi generates for every class: get_all, get_all_records, get_record, get_by_uuid,
 * get_by_name_label, get_<field>, and for writable fields set_<field>, add_to_/remove_from_<map>,
 * add_/remove_<set> (tags).
 */

type Kind = 'string' | 'int' | 'float' | 'bool' | 'datetime' | 'set' | 'map'

const FLOATS = new Set(['progress', 'HVM_shadow_multiplier'])

function kindOf(field: string, v: unknown): Kind {
  if (FLOATS.has(field)) return 'float'
  if (typeof v === 'number') return 'int'
  if (typeof v === 'boolean') return 'bool'
  if (v instanceof Date) return 'datetime'
  if (Array.isArray(v)) return 'set'
  if (typeof v === 'object' && v !== null) return 'map'
  return 'string'
}

// prettier-ignore
const WRITABLE: Record<string, string[]> = {
  pool: ['name_label', 'name_description', 'default_SR', 'suspend_image_SR', 'crash_dump_SR', 'other_config', 'tags', 'gui_config', 'health_check_config', 'wlb_enabled', 'wlb_verify_cert', 'policy_no_vendor_device', 'live_patching_disabled', 'migration_compression', 'coordinator_bias', 'ha_allow_overcommit'],
  host: ['name_label', 'name_description', 'other_config', 'tags', 'logging', 'suspend_image_sr', 'crash_dump_sr', 'display', 'guest_VCPUs_params', 'license_server'],
  host_metrics: ['other_config'],
  VM: ['name_label', 'name_description', 'user_version', 'is_a_template', 'affinity', 'memory_static_max', 'memory_static_min', 'memory_dynamic_max', 'memory_dynamic_min', 'VCPUs_params', 'VCPUs_max', 'VCPUs_at_startup', 'actions_after_softreboot', 'actions_after_shutdown', 'actions_after_reboot', 'actions_after_crash', 'PV_bootloader', 'PV_kernel', 'PV_ramdisk', 'PV_args', 'PV_bootloader_args', 'PV_legacy_args', 'HVM_boot_policy', 'HVM_boot_params', 'HVM_shadow_multiplier', 'platform', 'PCI_bus', 'other_config', 'recommendations', 'xenstore_data', 'ha_always_run', 'ha_restart_priority', 'tags', 'blocked_operations', 'bios_strings', 'appliance', 'start_delay', 'shutdown_delay', 'order', 'suspend_SR', 'hardware_platform_version', 'has_vendor_device', 'domain_type', 'NVRAM', 'protection_policy', 'snapshot_schedule', 'is_vmss_snapshot'],
  VM_metrics: ['other_config'],
  VM_guest_metrics: ['other_config'],
  VM_appliance: ['name_label', 'name_description'],
  VBD: ['other_config', 'userdevice', 'bootable', 'mode', 'type', 'unpluggable', 'qos_algorithm_type', 'qos_algorithm_params'],
  VDI: ['name_label', 'name_description', 'other_config', 'xenstore_data', 'sm_config', 'tags', 'sharable', 'read_only', 'allow_caching', 'on_boot', 'is_a_snapshot', 'snapshot_of', 'snapshot_time', 'managed', 'missing', 'physical_utilisation', 'virtual_size', 'metadata_of_pool'],
  SR: ['name_label', 'name_description', 'other_config', 'tags', 'sm_config', 'shared', 'physical_size', 'physical_utilisation', 'virtual_allocation'],
  PBD: ['other_config', 'device_config'],
  network: ['name_label', 'name_description', 'other_config', 'tags', 'MTU', 'default_locking_mode', 'purpose'],
  PIF: ['other_config', 'disallow_unplug', 'property'],
  VIF: ['other_config', 'locking_mode', 'ipv4_allowed', 'ipv6_allowed', 'qos_algorithm_type', 'qos_algorithm_params'],
  task: ['other_config'],
}

type ClassInfo = { fields: Map<string, Kind>; writable: Set<string> }

const CLASSES = new Map<string, ClassInfo>()
for (const [cls, factory] of Object.entries(RECORD_FACTORIES)) {
  const sample = factory({})
  const fields = new Map<string, Kind>()
  for (const [k, v] of Object.entries(sample)) fields.set(k, kindOf(k, v))
  CLASSES.set(cls, { fields, writable: new Set(WRITABLE[cls] ?? []) })
}

/** Classes with generated messages. */
export function genericClasses(): string[] {
  return [...CLASSES.keys()]
}

/** The wire class name for a case-insensitive spelling (`vm` → `VM`). */
export function canonicalClass(name: string): string | undefined {
  if (CLASSES.has(name)) return name
  const lower = name.toLowerCase()
  for (const c of CLASSES.keys()) if (c.toLowerCase() === lower) return c
  return undefined
}

function coerce(kind: Kind, v: unknown, field: string): unknown {
  switch (kind) {
    case 'int':
      return toInt(v, field)
    case 'float':
      return toFloat(v, field)
    case 'bool':
      return toBool(v, field)
    case 'set':
      return toList(v, field)
    case 'map':
      return toMap(v, field)
    case 'datetime':
      if (v instanceof Date) return v
      throw new XapiFailure('FIELD_TYPE_ERROR', [field])
    default:
      return toStr(v, field)
  }
}

function afterSet(ctx: CallCtx, cls: string, ref: string, field: string, before: SimRecord): void {
  if (cls !== 'VM') return
  if (field === 'appliance') {
    const old = before.appliance as string
    const now = ctx.db.get(ref)!.appliance as string
    if (ctx.db.has('VM_appliance', old)) ctx.db.removeFromSet(old, 'VMs', ref)
    if (ctx.db.has('VM_appliance', now)) ctx.db.addToSet(now, 'VMs', ref)
    refreshAppliance(ctx.db, old)
  }
  refreshVm(ctx.db, ref)
}

function records(ctx: CallCtx, cls: string): Record<string, SimRecord> {
  const out: Record<string, SimRecord> = {}
  for (const [ref, r] of ctx.db.all(cls)) out[ref] = r
  return out
}

const cache = new Map<string, MethodSpec | null>()

/** Resolves a method name to its spec: explicit methods first, then generated ones. */
export function resolveMethod(name: string): MethodSpec | undefined {
  const explicit = METHODS.get(name)
  if (explicit) return explicit
  let spec = cache.get(name)
  if (spec === undefined) {
    spec = generic(name) ?? alternative(name) ?? null
    cache.set(name, spec)
  }
  return spec ?? undefined
}

/**
 * gen_server.ml also matches each message's alternative wire name, `<Class>_<message>`
 * (`VM_get_all`, `VM_metrics_get_record`): the longest class name that prefixes it wins.
 */
function alternative(name: string): MethodSpec | undefined {
  if (name.includes('.')) return undefined
  const classes = new Set<string>(CLASSES.keys())
  for (const m of METHODS.keys()) classes.add(m.slice(0, m.indexOf('.')))
  const match = [...classes]
    .filter((c) => name.startsWith(`${c}_`) && name.length > c.length + 1)
    .sort((a, b) => b.length - a.length)[0]
  if (match === undefined) return undefined
  const dotted = `${match}.${name.slice(match.length + 1)}`
  return METHODS.get(dotted) ?? generic(dotted)
}

function generic(name: string): MethodSpec | undefined {
  const dot = name.indexOf('.')
  if (dot < 0) return undefined
  const cls = name.slice(0, dot)
  const msg = name.slice(dot + 1)
  const info = CLASSES.get(cls)
  if (!info) return undefined
  const { fields, writable } = info
  switch (msg) {
    case 'get_all':
      return { arity: [0], run: (ctx) => [...ctx.db.all(cls).keys()] }
    case 'get_all_records':
      return { arity: [0], run: (ctx) => records(ctx, cls) }
    case 'get_all_records_where':
      return {
        arity: [1],
        run(ctx, [expr]) {
          const e = parseWhere(toStr(expr, 'expr'))
          const out: Record<string, SimRecord> = {}
          for (const [ref, r] of ctx.db.all(cls)) if (matchWhere(e, r)) out[ref] = r
          return out
        },
      }
    case 'get_record':
      return { arity: [1], run: (ctx, [ref]) => ctx.db.require(cls, ref) }
    case 'get_by_uuid':
      return {
        arity: [1],
        run(ctx, [uuid]) {
          const ref = ctx.db.refByUuid(String(uuid))
          if (ref === undefined || ctx.db.classOf(ref) !== cls)
            throw new XapiFailure('UUID_INVALID', [cls, String(uuid)])
          return ref
        },
      }
  }
  if (msg === 'get_by_name_label' && fields.has('name_label')) {
    return {
      arity: [1],
      run: (ctx, [label]) => ctx.db.filter(cls, (r) => r.name_label === label).map(([ref]) => ref),
    }
  }
  if (msg.startsWith('get_')) {
    const field = msg.slice(4)
    if (!fields.has(field)) return undefined
    return { arity: [1], run: (ctx, [ref]) => ctx.db.require(cls, ref)[field] }
  }
  if (msg.startsWith('set_')) {
    const field = msg.slice(4)
    const kind = fields.get(field)
    if (!kind || !writable.has(field)) return undefined
    return {
      arity: [2],
      run(ctx, [ref, value]) {
        const before = { ...ctx.db.require(cls, ref) }
        ctx.db.update(ref as string, { [field]: coerce(kind, value, field) })
        afterSet(ctx, cls, ref as string, field, before)
      },
    }
  }
  if (msg.startsWith('add_to_') || msg.startsWith('remove_from_')) {
    const adding = msg.startsWith('add_to_')
    const field = msg.slice(adding ? 7 : 12)
    if (fields.get(field) !== 'map' || !writable.has(field)) return undefined
    return {
      arity: [adding ? 3 : 2],
      run(ctx, [ref, key, value]) {
        const r = ctx.db.require(cls, ref)
        const m = { ...(r[field] as Record<string, string>) }
        const k = toStr(key, field)
        if (adding) {
          // xapi: add_to_ on an existing key fails with MAP_DUPLICATE_KEY
          if (Object.hasOwn(m, k))
            throw new XapiFailure('MAP_DUPLICATE_KEY', [cls, field, ref as string, k])
          m[k] = toStr(value, field)
        } else {
          delete m[k]
        }
        const before = { ...r }
        ctx.db.update(ref as string, { [field]: m })
        afterSet(ctx, cls, ref as string, field, before)
      },
    }
  }
  if (msg.startsWith('add_') || msg.startsWith('remove_')) {
    const adding = msg.startsWith('add_')
    const field = msg.slice(adding ? 4 : 7)
    if (fields.get(field) !== 'set' || !writable.has(field)) return undefined
    return {
      arity: [2],
      run(ctx, [ref, value]) {
        ctx.db.require(cls, ref)
        const v = toStr(value, field)
        if (adding) ctx.db.addToSet(ref as string, field, v)
        else ctx.db.removeFromSet(ref as string, field, v)
      },
    }
  }
  return undefined
}

/** Every generated method name (for system.listMethods). */
export function genericMethodNames(): string[] {
  const out: string[] = []
  for (const [cls, { fields, writable }] of CLASSES) {
    out.push(
      `${cls}.get_all`,
      `${cls}.get_all_records`,
      `${cls}.get_all_records_where`,
      `${cls}.get_record`,
      `${cls}.get_by_uuid`
    )
    if (fields.has('name_label')) out.push(`${cls}.get_by_name_label`)
    for (const [f, kind] of fields) {
      out.push(`${cls}.get_${f}`)
      if (!writable.has(f)) continue
      out.push(`${cls}.set_${f}`)
      if (kind === 'map') out.push(`${cls}.add_to_${f}`, `${cls}.remove_from_${f}`)
      if (kind === 'set') out.push(`${cls}.add_${f}`, `${cls}.remove_${f}`)
    }
  }
  return out
}
