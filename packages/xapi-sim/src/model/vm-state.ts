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
  start: [H], start_on: [H], provision: [H], make_into_template: [H],
  changing_static_range: [H], changing_memory_limits: [H], changing_VCPUs: [H],
  changing_dynamic_range: [H, R], changing_VCPUs_live: [R],
  unpause: [P],
  resume: [S], resume_on: [S],
  clean_shutdown: [R], clean_reboot: [R], suspend: [R], pause: [R], pool_migrate: [R],
  snapshot_with_quiesce: [R],
  hard_shutdown: [P, S, R], shutdown: [P, S, R], checkpoint: [P, S, R],
  hard_reboot: [P, R],
  migrate_send: [H, S, R],
  export: [H, S], destroy: [H, S], create_template: [H, S],
  clone: [H], copy: [H],
  snapshot: ANY, revert: ANY, metadata_export: ANY, power_state_reset: ANY,
}

/** The operations listed (when they pass) in `VM.allowed_operations`. */
export const VM_OPERATIONS = Object.keys(ALLOWED_STATES)

const TEMPLATE_OPS = new Set([
  'clone',
  'copy',
  'provision',
  'export',
  'destroy',
  'metadata_export',
  'create_template',
  'changing_static_range',
  'changing_memory_limits',
  'changing_VCPUs',
  'changing_dynamic_range',
])
const SNAPSHOT_OPS = new Set([
  'revert',
  'clone',
  'copy',
  'create_template',
  'export',
  'destroy',
  'metadata_export',
])
const CONTROL_DOMAIN_OPS = new Set([
  'metadata_export',
  'changing_dynamic_range',
  'changing_VCPUs_live',
])
const NEEDS_PV = new Set([
  'clean_shutdown',
  'clean_reboot',
  'suspend',
  'checkpoint',
  'snapshot_with_quiesce',
])

function concurrencyOk(op: string, running: string): boolean {
  if (op === 'hard_shutdown') return running !== 'hard_shutdown'
  const copyish = ['clone', 'copy', 'export']
  if (copyish.includes(op) && copyish.includes(running)) return true
  const snapish = ['snapshot', 'checkpoint']
  if (snapish.includes(op) && snapish.includes(running)) return true
  if (
    ['clean_shutdown', 'clean_reboot', 'metadata_export'].includes(op) &&
    running === 'migrate_send'
  )
    return true
  return false
}

/** The ErrorDescription of the first reason `op` is not allowed on `vm` now, or undefined. */
export function vmOperationCheck(
  db: PoolDb,
  ref: string,
  vm: SimRecord,
  op: string
): string[] | undefined {
  const blocked = (vm.blocked_operations as Record<string, string>)[op]
  if (blocked !== undefined) return ['OPERATION_BLOCKED', ref, blocked]
  const states = ALLOWED_STATES[op] ?? ANY
  const ps = vm.power_state as PowerState
  if (!states.includes(ps)) {
    const expected = states.map((s) => s.toLowerCase()).join(', ')
    return ['VM_BAD_POWER_STATE', ref, expected, ps.toLowerCase()]
  }
  for (const [task, running] of Object.entries(vm.current_operations as Record<string, string>)) {
    if (!concurrencyOk(op, running))
      return ['OTHER_OPERATION_IN_PROGRESS', 'VM', ref, running, task]
  }
  if (vm.is_control_domain && !CONTROL_DOMAIN_OPS.has(op)) {
    return ['OPERATION_NOT_ALLOWED', `This operation is not allowed on a control domain: ${op}`]
  }
  if (vm.is_a_template && !TEMPLATE_OPS.has(op)) return ['VM_IS_TEMPLATE', ref, op]
  if (vm.is_a_snapshot && !SNAPSHOT_OPS.has(op)) return ['VM_IS_SNAPSHOT', ref, op]
  if (NEEDS_PV.has(op) && db.guests.get(ref)?.behaviour === 'no-pv')
    return ['VM_MISSING_PV_DRIVERS', ref]
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

/** Recomputes `allowed_operations` of a VM (logs an event only if it changed). */
export function refreshVm(db: PoolDb, ref: string): void {
  const vm = db.get(ref)
  if (!vm || db.classOf(ref) !== 'VM') return
  const allowed = VM_OPERATIONS.filter((op) => !vmOperationCheck(db, ref, vm, op))
  const prev = vm.allowed_operations as string[]
  if (prev.length !== allowed.length || prev.some((x, i) => x !== allowed[i])) {
    db.update(ref, { allowed_operations: allowed })
  }
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
