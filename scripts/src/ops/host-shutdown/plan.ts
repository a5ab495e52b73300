import { UsageError } from '../../lib/errors.js'

// Record fields read by host-shutdown (wire names). int64 fields may arrive as strings over
// XML-RPC (untyped <value>), hence `number | string` and `toInt`.
type IntLike = number | string

/** The `host` fields host-shutdown reads. */
export type ShutdownHostRecord = {
  readonly uuid: string
  readonly name_label: string
  readonly enabled: boolean
  readonly metrics?: string
}

/** The `VM` fields host-shutdown reads. */
export type ShutdownVmRecord = {
  readonly uuid: string
  readonly name_label: string
  readonly power_state: string
  readonly resident_on: string
  readonly is_control_domain: boolean
  readonly is_a_template?: boolean
  readonly is_a_snapshot?: boolean
  readonly other_config?: Readonly<Record<string, string>>
  readonly allowed_operations?: readonly string[]
  readonly current_operations?: Readonly<Record<string, string>>
  readonly order?: IntLike
  readonly shutdown_delay?: IntLike
}

/** A VM of the plan. */
export type PlannedVm = {
  readonly ref: string
  readonly uuid: string
  readonly name: string
  readonly powerState: 'Running' | 'Paused'
  readonly order: number
  /** `clean_shutdown` in `allowed_operations` when the plan was made. */
  readonly cleanAllowed: boolean
}

/** VMs of one `order` value, shut down together. */
export type OrderGroup = { readonly order: number; readonly vms: readonly PlannedVm[] }

/** What host-shutdown will touch on its host. */
export type ShutdownPlan = {
  /** Highest `order` first (appliance shutdown semantics). */
  readonly groups: readonly OrderGroup[]
  /** Opted out with `other_config:auto_poweroff=false`: reported, never touched. */
  readonly optedOut: readonly PlannedVm[]
}

/**
 * Finds the host named by `--host` (uuid or name_label). Without `--host` the pool must have a
 * single host. Throws {@link UsageError} (exit 2) for an unknown or ambiguous host.
 */
export function resolveHost<H extends ShutdownHostRecord>(
  hosts: Readonly<Record<string, H>>,
  wanted: string | undefined
): { ref: string; record: H } {
  const entries = Object.entries(hosts)
  if (wanted === undefined) {
    const [only, ...others] = entries
    if (only === undefined) throw new UsageError('the pool has no host')
    if (others.length > 0) {
      const names = entries.map(([, h]) => h.name_label).join(', ')
      throw new UsageError(`--host is required: the pool has ${entries.length} hosts (${names})`)
    }
    return { ref: only[0], record: only[1] }
  }
  const byUuid = entries.find(([, h]) => h.uuid.toLowerCase() === wanted.toLowerCase())
  if (byUuid) return { ref: byUuid[0], record: byUuid[1] }
  const byName = entries.filter(([, h]) => h.name_label === wanted)
  const [first, ...rest] = byName
  if (first === undefined) {
    const names = entries.map(([, h]) => h.name_label).join(', ')
    throw new UsageError(`unknown host ${JSON.stringify(wanted)} (hosts of this pool: ${names})`)
  }
  if (rest.length > 0) {
    throw new UsageError(
      `${byName.length} hosts are named ${JSON.stringify(wanted)}: give the uuid`
    )
  }
  return { ref: first[0], record: first[1] }
}

/** Whether the VM opted out of host-shutdown handling (`other_config:auto_poweroff=false`). */
export function isOptedOut(vm: ShutdownVmRecord): boolean {
  return vm.other_config?.auto_poweroff?.trim().toLowerCase() === 'false'
}

/** A VM host-shutdown deals with: resident on the host, not a control domain, Running or Paused. */
export function isShutdownCandidate(vm: ShutdownVmRecord, hostRef: string): boolean {
  return (
    vm.resident_on === hostRef &&
    !vm.is_control_domain &&
    vm.is_a_template !== true &&
    vm.is_a_snapshot !== true &&
    (vm.power_state === 'Running' || vm.power_state === 'Paused')
  )
}

/** The plan entry of a VM record. */
export function toPlannedVm(ref: string, vm: ShutdownVmRecord): PlannedVm {
  return {
    ref,
    uuid: vm.uuid,
    name: vm.name_label,
    powerState: vm.power_state === 'Paused' ? 'Paused' : 'Running',
    order: toInt(vm.order),
    cleanAllowed: vm.allowed_operations?.includes('clean_shutdown') ?? false,
  }
}

/**
 * Selects the host's VMs and groups them by `order`, highest first; VMs of other hosts, Halted
 * and Suspended VMs and control domains are left out entirely.
 */
export function planShutdown<V extends ShutdownVmRecord>(
  vms: Readonly<Record<string, V>>,
  hostRef: string
): ShutdownPlan {
  const candidates = Object.entries(vms)
    .filter(([, vm]) => isShutdownCandidate(vm, hostRef))
    .map(([ref, vm]) => ({ planned: toPlannedVm(ref, vm), optedOut: isOptedOut(vm) }))
  return {
    groups: groupByOrder(candidates.filter((c) => !c.optedOut).map((c) => c.planned)),
    optedOut: candidates.filter((c) => c.optedOut).map((c) => c.planned),
  }
}

/** Groups VMs by `order`, highest first; within a group, by name for a stable plan. */
export function groupByOrder(vms: readonly PlannedVm[]): OrderGroup[] {
  const groups = new Map<number, PlannedVm[]>()
  for (const vm of vms) groups.set(vm.order, [...(groups.get(vm.order) ?? []), vm])
  return [...groups.entries()]
    .sort(([a], [b]) => b - a)
    .map(([order, list]) => ({ order, vms: list.sort((a, b) => a.name.localeCompare(b.name)) }))
}

/**
 * The evacuation time budget of the dom0 shutdown program (CA-220275): the time to push the
 * host's used memory over 1 Gbit/s, never below 240 s.
 */
export function evacuationBudgetS(
  memoryTotal: IntLike | undefined,
  memoryFree: IntLike | undefined
): number {
  const used = toInt(memoryTotal) - toInt(memoryFree)
  return Math.max(240, (used * 8) / (1000 * 1024 * 1024))
}

/** An int64 field as a number (XML-RPC sends them as strings); 0 when absent or malformed. */
export function toInt(value: IntLike | undefined): number {
  const n = typeof value === 'string' ? Number(value) : value
  return typeof n === 'number' && Number.isFinite(n) ? n : 0
}
