import { XapiFailure } from '../errors.js'
import type { PoolDb, SimRecord } from './db.js'

/*
 * VM operation checks, after xapi's Xapi_vm_lifecycle.check_operation_error: blocked_operations,
 * then power state, then concurrency with current_operations, then template/snapshot rules, then
 * guest capabilities. allowed_operations is the set of operations passing these checks.
 */

type PowerState = 'Halted' | 'Paused' | 'Running' | 'Suspended'

const H: PowerState = 'Halted'
const P: PowerState = 'Paused'
const R: PowerState = 'Running'
const S: PowerState = 'Suspended'
const ANY: PowerState[] = [H, P, S, R]

// prettier-ignore
const ALLOWED_STATES: Record<string, PowerState[]> = {
  start: [H], start_on: [H], provision: [H], make_into_template: [H], changing_shadow_memory: [H],
  changing_static_range: [H], changing_memory_limits: [H], changing_VCPUs: [H],
  changing_dynamic_range: [H, R], changing_VCPUs_live: [R],
  unpause: [P],
  resume: [S], resume_on: [S],
  clean_shutdown: [R], clean_reboot: [R], suspend: [R], pause: [R], pool_migrate: [R],
  snapshot_with_quiesce: [R], changing_shadow_memory_live: [R], changing_memory_live: [R],
  awaiting_memory_live: [R], call_plugin: [R], data_source_op: [R], send_sysrq: [R],
  send_trigger: [R], csvm: [S], get_boot_record: [P, S, R],
  hard_shutdown: [P, S, R], shutdown: [P, S, R], checkpoint: [P, S, R],
  hard_reboot: [P, R],
  migrate_send: [H, S, R],
  export: [H, S], destroy: [H, S], create_template: [H, S],
  clone: [H], copy: [H],
  snapshot: ANY, revert: ANY, metadata_export: ANY, power_state_reset: ANY,
}

/**
 * The operations xapi considers for `VM.allowed_operations` (update_allowed_operations), listed
 * in the order xapi produces them (it folds the list into an accumulator, reversing it).
 */
// prettier-ignore
export const VM_OPERATIONS = [
  'snapshot', 'copy', 'clone', 'revert', 'checkpoint', 'snapshot_with_quiesce', 'start',
  'start_on', 'pause', 'unpause', 'clean_shutdown', 'clean_reboot', 'hard_shutdown',
  'hard_reboot', 'suspend', 'resume', 'resume_on', 'export', 'destroy', 'provision',
  'changing_VCPUs_live', 'pool_migrate', 'migrate_send', 'make_into_template',
  'changing_static_range', 'changing_shadow_memory', 'changing_dynamic_range',
].reverse()

// prettier-ignore
const TEMPLATE_OPS = new Set([
  'changing_dynamic_range', 'changing_static_range', 'changing_memory_limits',
  'changing_shadow_memory', 'changing_VCPUs', 'clone', 'copy', 'export', 'metadata_export',
  'provision',
])
// prettier-ignore
const SNAPSHOT_OPS = new Set([
  'revert', 'clone', 'copy', 'export', 'destroy', 'hard_shutdown', 'metadata_export',
])
// prettier-ignore
const CONTROL_DOMAIN_OPS = new Set([
  'data_source_op', 'changing_memory_live', 'awaiting_memory_live', 'metadata_export',
  'changing_dynamic_range', 'changing_memory_limits', 'changing_static_range', 'start',
  'start_on', 'changing_VCPUs', 'destroy',
])
/**
 * check_op_for_feature (strict, as with_vm_operation and allowed_operations use it): a running
 * HVM guest without PV drivers lacks the shutdown, suspend and hotplug features.
 */
const NEEDS_PV = new Set([
  'clean_shutdown',
  'clean_reboot',
  'suspend',
  'checkpoint',
  'pool_migrate',
  'migrate_send',
  'changing_VCPUs_live',
])

const LONG_COPIES = ['clone', 'copy', 'export']
const SNAPSHOTS = ['snapshot', 'checkpoint']
// (current operations, new operation) pairs xapi allows together
// prettier-ignore
const STATE_MACHINE: [string, string][] = [
  ['snapshot_with_quiesce', 'snapshot'], ['migrate_send', 'metadata_export'],
  ['migrate_send', 'clean_shutdown'], ['migrate_send', 'clean_reboot'],
  ['migrate_send', 'start'], ['migrate_send', 'start_on'],
]

/** xapi's is_allowed_concurrently. */
function allowedConcurrently(op: string, current: string[]): boolean {
  const aux = (set: string[]) => set.includes(op) && current.every((o) => set.includes(o))
  if (aux(LONG_COPIES) || aux(SNAPSHOTS)) return true
  if (op === 'hard_shutdown') return !current.includes('hard_shutdown')
  if (op === 'hard_reboot')
    return !current.some((o) => o === 'hard_shutdown' || o === 'hard_reboot')
  return current.length === 1 && STATE_MACHINE.some(([c, o]) => c === current[0] && o === op)
}

function allowedStates(vm: SimRecord, op: string): PowerState[] {
  if (op === 'clone' || op === 'copy') return vm.is_a_snapshot ? [H, S] : [H]
  if (
    vm.is_control_domain &&
    ['changing_VCPUs', 'changing_static_range', 'changing_memory_limits'].includes(op)
  )
    return [H, R]
  return ALLOWED_STATES[op] ?? ANY
}

/**
 * The ErrorDescription of the first reason `op` is not allowed on `vm` now, or undefined
 * (xapi's check order: blocked, power state, concurrency, template, snapshot, provision/revert,
 * control domain, guest drivers).
 */
export function vmOperationCheck(
  db: PoolDb,
  ref: string,
  vm: SimRecord,
  op: string
): string[] | undefined {
  const blocked = (vm.blocked_operations as Record<string, string>)[op]
  if (blocked !== undefined) return ['OPERATION_BLOCKED', ref, blocked]
  const states = allowedStates(vm, op)
  const ps = vm.power_state as PowerState
  if (!states.includes(ps)) {
    const expected = states.map((s) => s.toLowerCase()).join(', ')
    return ['VM_BAD_POWER_STATE', ref, expected, ps.toLowerCase()]
  }
  const ops = Object.entries(vm.current_operations as Record<string, string>)
  if (
    ops.length > 0 &&
    !allowedConcurrently(
      op,
      ops.map(([, o]) => o)
    )
  ) {
    // xapi ≥ 25.x (xen-api PR 6588): [class, ref, operation, task]; several as {a,b} each
    const braces = (xs: string[]) => (xs.length === 1 ? xs[0]! : `{${xs.join(',')}}`)
    return [
      'OTHER_OPERATION_IN_PROGRESS',
      'VM',
      ref,
      braces(ops.map(([, o]) => o)),
      braces(ops.map(([t]) => t)),
    ]
  }
  if (vm.is_a_template && !vm.is_a_snapshot) {
    const isDefault = vm.is_default_template || vm.other_config?.default_template === 'true'
    const ok = TEMPLATE_OPS.has(op) || ((op === 'destroy' || op === 'migrate_send') && !isDefault)
    if (!ok) return ['VM_IS_TEMPLATE', ref, op]
  }
  if (vm.is_a_snapshot && !SNAPSHOT_OPS.has(op)) return ['VM_IS_SNAPSHOT', ref, op]
  if (op === 'provision' && !vm.is_a_template) return ['ONLY_PROVISION_TEMPLATE']
  if (op === 'revert' && !vm.is_a_snapshot) return ['ONLY_REVERT_SNAPSHOT']
  if (vm.is_control_domain) {
    if (op === 'changing_VCPUs' || op === 'destroy')
      return ['OPERATION_NOT_ALLOWED', 'This operation is not allowed on dom0']
    if (!CONTROL_DOMAIN_OPS.has(op))
      return ['OPERATION_NOT_ALLOWED', 'This operation is not allowed on a control domain']
  }
  if (NEEDS_PV.has(op) && ps === 'Running' && db.guests.get(ref)?.behaviour === 'no-pv')
    return ['VM_LACKS_FEATURE', ref]
  return undefined
}

/** The first reason `op` is not allowed on `vm` now, or undefined. */
export function vmOperationError(
  db: PoolDb,
  ref: string,
  vm: SimRecord,
  op: string
): XapiFailure | undefined {
  const d = vmOperationCheck(db, ref, vm, op)
  return d ? new XapiFailure(d[0]!, d.slice(1)) : undefined
}

/** Throws the first reason `op` is not allowed on `vm`. */
export function assertVmOperation(db: PoolDb, ref: string, op: string): SimRecord {
  const vm = db.require('VM', ref)
  const err = vmOperationError(db, ref, vm, op)
  if (err) throw err
  return vm
}

/** Recomputes `allowed_operations` of a VM (logs an event only if it changed), and of its appliance. */
export function refreshVm(db: PoolDb, ref: string): void {
  const vm = db.get(ref)
  if (!vm || db.classOf(ref) !== 'VM') return
  const allowed = VM_OPERATIONS.filter((op) => !vmOperationCheck(db, ref, vm, op))
  const prev = vm.allowed_operations as string[]
  if (prev.length !== allowed.length || prev.some((x, i) => x !== allowed[i])) {
    db.update(ref, { allowed_operations: allowed })
  }
  refreshAppliance(db, vm.appliance as string)
}

const APPLIANCE_OPERATIONS = ['start', 'clean_shutdown', 'hard_shutdown', 'shutdown']

/**
 * Xapi_vm_appliance_lifecycle.check_operation_error: one operation at a time, then "any member
 * VM in a state where the operation makes sense".
 */
export function applianceOperationCheck(db: PoolDb, ref: string, op: string): string[] | undefined {
  const a = db.require('VM_appliance', ref)
  const ops = Object.entries(a.current_operations as Record<string, string>)
  if (ops.length > 0) {
    const braces = (xs: string[]) => (xs.length === 1 ? xs[0]! : `{${xs.join(',')}}`)
    return [
      'OTHER_OPERATION_IN_PROGRESS',
      'VM_appliance',
      ref,
      braces(ops.map(([, o]) => o)),
      braces(ops.map(([t]) => t)),
    ]
  }
  const states = (a.VMs as string[]).map((vm) => db.get(vm)?.power_state as string)
  if (states.length === 0) return ['OPERATION_NOT_ALLOWED', 'Appliance has no VMs.']
  const [ok, why] =
    op === 'start'
      ? [states.includes('Halted'), 'There are no halted VMs in this appliance.']
      : op === 'clean_shutdown'
        ? [states.includes('Running'), 'There are no running VMs in this appliance.']
        : [states.some((p) => p !== 'Halted'), 'All VMs in this appliance are halted.']
  return ok ? undefined : ['OPERATION_NOT_ALLOWED', why]
}

/** Recomputes `allowed_operations` of a VM_appliance (update_allowed_operations). */
export function refreshAppliance(db: PoolDb, ref: string): void {
  if (!db.has('VM_appliance', ref)) return
  const allowed = APPLIANCE_OPERATIONS.filter((op) => !applianceOperationCheck(db, ref, op))
  const prev = db.get(ref)!.allowed_operations as string[]
  if (prev.length !== allowed.length || prev.some((x, i) => x !== allowed[i]))
    db.update(ref, { allowed_operations: allowed })
}

/**
 * Runs `fn` with `op` recorded in the VM's `current_operations` under `taskRef` (after the checks),
 * keeping `allowed_operations` true while it runs and after.
 */
export async function withVmOperation<T>(
  db: PoolDb,
  ref: string,
  op: string,
  taskRef: string,
  fn: (vm: SimRecord) => Promise<T> | T
): Promise<T> {
  const vm = assertVmOperation(db, ref, op)
  db.update(ref, { current_operations: { ...vm.current_operations, [taskRef]: op } })
  refreshVm(db, ref)
  try {
    return await fn(vm)
  } finally {
    const cur = db.get(ref)
    if (cur) {
      const ops = { ...(cur.current_operations as Record<string, string>) }
      delete ops[taskRef]
      db.update(ref, { current_operations: ops })
      refreshVm(db, ref)
    }
  }
}

/** Memory a VM takes on its host while resident (static max, as xapi's placement assumes). */
export function vmMemory(vm: SimRecord): number {
  return Number(vm.memory_static_max) + Number(vm.memory_overhead ?? 0)
}

/** Free memory of a host: total − host overhead − resident VMs (dom0 included). */
export function hostFreeMemory(db: PoolDb, hostRef: string): number {
  const host = db.get(hostRef)
  if (!host) return 0
  const metrics = db.get(host.metrics as string)
  const total = Number(metrics?.memory_total ?? 0)
  let used = Number(host.memory_overhead ?? 0)
  for (const vmRef of host.resident_VMs as string[]) {
    const vm = db.get(vmRef)
    if (vm) used += vm.is_control_domain ? Number(vm.memory_static_max) : vmMemory(vm)
  }
  return Math.max(0, total - used)
}

/** Updates `host_metrics.memory_free` of a host. */
export function refreshHostMemory(db: PoolDb, hostRef: string): void {
  const host = db.get(hostRef)
  if (!host) return
  const mref = host.metrics as string
  if (!db.get(mref)) return
  const free = hostFreeMemory(db, hostRef)
  if (db.get(mref)!.memory_free !== free)
    db.update(mref, { memory_free: free, last_updated: new Date() })
}
