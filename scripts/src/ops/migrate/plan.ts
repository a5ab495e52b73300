import { createVmMatcher, selectVms, type SelectorArgs } from '../../lib/selectors.js'
import type { Expectation, Journal, JournalEntry } from './journal.js'
import {
  isNull,
  MIGRATE_MARKER,
  SHUTDOWN_MARKER,
  MIGRATED_TAG_PREFIX,
  toInt,
  type MNetwork,
  type MVm,
  type PoolInventory,
} from './records.js'

export type MigrateMethod = 'auto' | 'native' | 'stream'

/** What the plan needs besides the two inventories. */
export type PlanOptions = {
  readonly selectors: SelectorArgs
  /** `--sr`: destination SR uuid or name; default the destination pool's default SR. */
  readonly sr?: string
  /** `--network-map SRC=DST` values (names or uuids). */
  readonly networkMap: readonly string[]
  readonly method: MigrateMethod
  readonly running: 'shutdown' | 'skip'
}

export type PlannedDisk = {
  readonly vbd: string
  readonly vdi: string
  readonly userdevice: string
  readonly virtualSize: number
  readonly physicalUtilisation: number
}

export type PlannedVif = {
  readonly vif: string
  readonly device: string
  readonly mac: string
  readonly mtu: number
  readonly sourceNetworkName: string
  /** Destination network ref and name. */
  readonly network: string
  readonly networkName: string
}

/** One VM to migrate. */
export type PlannedVm = {
  /** Source VM ref; empty when the source no longer exists (finishing a journaled move). */
  readonly ref: string
  readonly uuid: string
  readonly name: string
  readonly powerState: string
  /** Running before we touched it (from the journal, or the marker, when we shut it down earlier). */
  readonly wasRunning: boolean
  /**
   * Halted by an earlier run's stream copy that died before restarting it or verifying the copy
   * (the source's SHUTDOWN_MARKER; the journal's entry, when there is one, says instead).
   */
  readonly shutDownBefore: boolean
  /** The source host doing the work: `resident_on`, else the source pool master. */
  readonly sourceHost: string
  readonly disks: readonly PlannedDisk[]
  readonly suspendVdi?: string
  readonly vifs: readonly PlannedVif[]
  /** The method to use; `auto` is resolved per VM at run time. */
  readonly method: MigrateMethod
  readonly expect: Expectation
  /** The journal's entry when resuming. */
  readonly resume?: JournalEntry
  readonly sourceGone: boolean
}

export type SkippedVm = {
  readonly uuid: string
  readonly name: string
  readonly reason: string
  readonly newVm?: string
}

export type SpaceCheck = {
  readonly sr: string
  readonly name: string
  readonly requiredBytes: number
  readonly freeBytes: number
}

/** The whole batch, decided before anything changes. */
export type MigrationPlan = {
  readonly source: { readonly uuid: string; readonly name: string }
  readonly destination: { readonly uuid: string; readonly name: string }
  /** The destination SR of every disk. */
  readonly sr: { readonly ref: string; readonly uuid: string; readonly name: string }
  readonly vms: readonly PlannedVm[]
  readonly skipped: readonly SkippedVm[]
  readonly space: readonly SpaceCheck[]
  /** Plan errors: any of them stops the run before anything changes (exit 2). */
  readonly errors: readonly string[]
}

/**
 * Builds the migration plan: selection, VDI → SR map with a free-space check, VIF → network map
 * (`--network-map`, else the network of the same name), name clashes. Pure: reads the two
 * inventories and the journal, changes nothing. Problems are collected in `errors`.
 */
export function buildPlan(
  source: PoolInventory,
  dest: PoolInventory,
  options: PlanOptions,
  journal?: Journal
): MigrationPlan {
  const errors: string[] = []
  const skipped: SkippedVm[] = []
  const vms: PlannedVm[] = []

  const sr = resolveDestSr(dest, options.sr, errors)
  const networkMap = parseNetworkMap(source, dest, options.networkMap, errors)

  const selection = selectVms(Object.fromEntries(source.vms), options.selectors)
  const journalEntries = journal?.entries() ?? []
  // A `--vm` naming a VM that is already gone because we migrated it is not an error on a rerun.
  for (const pattern of selection.unmatched) {
    const match = createVmMatcher(pattern)
    const known = journalEntries.some((e) =>
      match({
        uuid: e.uuid,
        name_label: e.name,
        is_a_template: false,
        is_a_snapshot: false,
        is_control_domain: false,
      })
    )
    if (!known) {
      errors.push(
        `--vm ${JSON.stringify(pattern)} matched no VM of the source pool (templates, snapshots and control domains are never selected)`
      )
    }
  }
  if (
    options.selectors.vm.length === 0 &&
    options.selectors.tag.length === 0 &&
    !options.selectors.all
  ) {
    errors.push('select VMs with --vm, --tag or --all')
  }

  const destNames = new Map<string, string[]>()
  for (const vm of dest.vms.values()) {
    if (vm.is_a_template || vm.is_a_snapshot || vm.is_control_domain) continue
    const list = destNames.get(vm.name_label) ?? []
    list.push(vm.other_config?.[MIGRATE_MARKER] ?? '')
    destNames.set(vm.name_label, list)
  }
  const seenNames = new Map<string, string>()

  for (const { ref, record: vm } of selection.selected) {
    const entry = journal?.get(vm.uuid)
    if (entry?.status === 'done') {
      skipped.push({
        uuid: vm.uuid,
        name: vm.name_label,
        reason: 'already migrated (journal)',
        newVm: entry.newVm,
      })
      continue
    }
    const tag = (vm.tags ?? []).find((t) => t.startsWith(MIGRATED_TAG_PREFIX))
    if (tag !== undefined && entry === undefined) {
      skipped.push({ uuid: vm.uuid, name: vm.name_label, reason: `already migrated (tag ${tag})` })
      continue
    }
    const shutDownBefore =
      entry === undefined &&
      vm.power_state === 'Halted' &&
      vm.other_config?.[SHUTDOWN_MARKER] !== undefined
    const wasRunning = entry?.wasRunning ?? (vm.power_state === 'Running' || shutDownBefore)
    const method = chooseMethod(vm, options)
    if (method !== 'auto' && method !== 'native' && method !== 'stream') {
      skipped.push({ uuid: vm.uuid, name: vm.name_label, reason: method })
      continue
    }
    const clash = (destNames.get(vm.name_label) ?? []).some((marker) => marker !== vm.uuid)
    if (clash) {
      errors.push(
        `name clash: the destination pool already has a VM named ${JSON.stringify(vm.name_label)}`
      )
    }
    const twin = seenNames.get(vm.name_label)
    if (twin !== undefined) {
      errors.push(
        `name clash: VMs ${twin} and ${vm.uuid} are both named ${JSON.stringify(vm.name_label)}`
      )
    }
    seenNames.set(vm.name_label, vm.uuid)

    const disks = planDisks(source, vm, errors)
    const vifs = planVifs(source, dest, vm, networkMap, errors)
    const suspendVdi =
      vm.power_state === 'Suspended' && !isNull(vm.suspend_VDI) ? vm.suspend_VDI : undefined
    vms.push({
      ref,
      uuid: vm.uuid,
      name: vm.name_label,
      powerState: vm.power_state,
      wasRunning,
      shutDownBefore,
      sourceHost: isNull(vm.resident_on) ? source.pool.master : vm.resident_on,
      disks,
      suspendVdi,
      vifs,
      method,
      expect: {
        disks: disks.map((d) => ({
          userdevice: d.userdevice,
          virtualSize: d.virtualSize,
          sr: sr?.ref ?? '',
        })),
        vifs: vifs.map((v) => ({
          device: v.device,
          network: v.network,
          networkName: v.networkName,
          mac: v.mac,
          mtu: v.mtu,
        })),
      },
      resume: entry,
      sourceGone: false,
    })
  }

  // Journaled VMs whose source is gone (moved by a native migration, or deleted) but whose run
  // did not finish: verify the copy and finish without the source.
  const present = new Set([...source.vms.values()].map((vm) => vm.uuid))
  for (const entry of journalEntries) {
    if (present.has(entry.uuid) || entry.status === 'skipped') continue
    if (entry.status === 'done') {
      // Moved (or its source deleted) by an earlier run: reported, as a VM still there is.
      skipped.push({
        uuid: entry.uuid,
        name: entry.name,
        reason: 'already migrated (journal)',
        newVm: entry.newVm,
      })
      continue
    }
    // Without `newVmRef` (a run killed during a live move that then finished), the copy is
    // looked for on the destination by its marker at run time.
    if (entry.expect === undefined) {
      skipped.push({
        uuid: entry.uuid,
        name: entry.name,
        reason: 'the source VM no longer exists and the journal has no record of its copy',
      })
      continue
    }
    vms.push({
      ref: '',
      uuid: entry.uuid,
      name: entry.name,
      powerState: 'Halted',
      wasRunning: entry.wasRunning,
      shutDownBefore: false,
      sourceHost: source.pool.master,
      disks: [],
      vifs: [],
      method: entry.method ?? 'native',
      expect: entry.expect,
      resume: entry,
      sourceGone: true,
    })
  }

  const space = sr ? checkSpace(source, dest, sr.ref, vms, errors) : []
  return {
    source: { uuid: source.pool.uuid, name: poolName(source) },
    destination: { uuid: dest.pool.uuid, name: poolName(dest) },
    sr: sr ?? { ref: '', uuid: '', name: '' },
    vms,
    skipped,
    space,
    errors,
  }
}

/** The pool's name_label, or its uuid when it has none. */
export function poolName(inventory: PoolInventory): string {
  return inventory.pool.name_label || inventory.pool.uuid
}

function chooseMethod(vm: MVm, options: PlanOptions): MigrateMethod | string {
  // migrate_send accepts Halted, Suspended and Running VMs; a paused VM can only be streamed.
  if (vm.power_state === 'Paused' && options.method === 'native') {
    return 'paused: VM.migrate_send needs it running, halted or suspended (use --method stream or auto)'
  }
  const method = vm.power_state === 'Paused' ? 'stream' : options.method
  const live = vm.power_state === 'Running' || vm.power_state === 'Paused'
  if (live && method === 'stream' && options.running === 'skip') {
    return `${vm.power_state.toLowerCase()}: a stream copy needs it halted (--running skip)`
  }
  return method
}

function resolveDestSr(
  dest: PoolInventory,
  wanted: string | undefined,
  errors: string[]
): { ref: string; uuid: string; name: string } | undefined {
  let ref: string | undefined
  if (wanted === undefined) {
    ref = dest.pool.default_SR
    if (isNull(ref) || !dest.srs.has(ref)) {
      errors.push('the destination pool has no default SR: pass --sr')
      return undefined
    }
  } else {
    const lower = wanted.toLowerCase()
    const matches = [...dest.srs].filter(
      ([, sr]) => sr.uuid.toLowerCase() === lower || sr.name_label === wanted
    )
    if (matches.length === 0) {
      errors.push(`--sr ${JSON.stringify(wanted)}: no such SR in the destination pool`)
      return undefined
    }
    if (matches.length > 1) {
      errors.push(
        `--sr ${JSON.stringify(wanted)}: ${matches.length} SRs have that name, use a uuid`
      )
      return undefined
    }
    ref = matches[0]![0]
  }
  const sr = dest.srs.get(ref)!
  if (sr.content_type === 'iso') {
    errors.push(`destination SR ${sr.name_label} is an ISO library`)
  }
  return { ref, uuid: sr.uuid, name: sr.name_label }
}

function findNetworks(inventory: PoolInventory, wanted: string): Array<[string, MNetwork]> {
  const lower = wanted.toLowerCase()
  const byUuid = [...inventory.networks].filter(([, n]) => n.uuid.toLowerCase() === lower)
  if (byUuid.length > 0) return byUuid
  return [...inventory.networks].filter(([, n]) => n.name_label === wanted)
}

/** `--network-map SRC=DST` → source network ref → destination network ref. */
function parseNetworkMap(
  source: PoolInventory,
  dest: PoolInventory,
  values: readonly string[],
  errors: string[]
): Map<string, string> {
  const map = new Map<string, string>()
  for (const value of values) {
    const at = value.indexOf('=')
    if (at <= 0 || at === value.length - 1) {
      errors.push(`--network-map ${JSON.stringify(value)}: expected SRC=DST (names or uuids)`)
      continue
    }
    const from = value.slice(0, at)
    const to = value.slice(at + 1)
    const src = findNetworks(source, from)
    const dst = findNetworks(dest, to)
    if (src.length !== 1) {
      errors.push(
        `--network-map ${JSON.stringify(value)}: ${src.length === 0 ? 'no' : 'more than one'} source network ${JSON.stringify(from)}`
      )
    }
    if (dst.length !== 1) {
      errors.push(
        `--network-map ${JSON.stringify(value)}: ${dst.length === 0 ? 'no' : 'more than one'} destination network ${JSON.stringify(to)}`
      )
    }
    if (src.length === 1 && dst.length === 1) {
      const [srcRef, srcNet] = src[0]!
      const before = map.get(srcRef)
      if (before !== undefined && before !== dst[0]![0]) {
        errors.push(
          `--network-map ${JSON.stringify(value)}: source network ${JSON.stringify(srcNet.name_label)} is already mapped to ${JSON.stringify(dest.networks.get(before)?.name_label ?? before)}`
        )
      }
      map.set(srcRef, dst[0]![0])
    }
  }
  return map
}

function planDisks(source: PoolInventory, vm: MVm, errors: string[]): PlannedDisk[] {
  const disks: PlannedDisk[] = []
  for (const vbdRef of vm.VBDs) {
    const vbd = source.vbds.get(vbdRef)
    if (vbd === undefined || vbd.type !== 'Disk' || isNull(vbd.VDI)) continue
    const vdi = source.vdis.get(vbd.VDI)
    if (vdi === undefined) {
      errors.push(`VM ${vm.name_label}: disk ${vbd.userdevice} has an unknown VDI`)
      continue
    }
    disks.push({
      vbd: vbdRef,
      vdi: vbd.VDI,
      userdevice: vbd.userdevice,
      virtualSize: toInt(vdi.virtual_size),
      physicalUtilisation: toInt(vdi.physical_utilisation),
    })
  }
  return disks.sort((a, b) => a.userdevice.localeCompare(b.userdevice, 'en', { numeric: true }))
}

function planVifs(
  source: PoolInventory,
  dest: PoolInventory,
  vm: MVm,
  networkMap: ReadonlyMap<string, string>,
  errors: string[]
): PlannedVif[] {
  const vifs: PlannedVif[] = []
  for (const vifRef of vm.VIFs) {
    const vif = source.vifs.get(vifRef)
    if (vif === undefined) continue
    const srcName = source.networks.get(vif.network)?.name_label ?? vif.network
    let target = networkMap.get(vif.network)
    if (target === undefined) {
      const same = [...dest.networks].filter(([, n]) => n.name_label === srcName)
      if (same.length === 1) target = same[0]![0]
      else {
        errors.push(
          `VM ${vm.name_label}: VIF ${vif.device} is on network ${JSON.stringify(srcName)}, ` +
            (same.length === 0
              ? 'which the destination pool does not have'
              : 'which is ambiguous in the destination pool') +
            `: add --network-map ${JSON.stringify(`${srcName}=<destination network>`)}`
        )
        continue
      }
    }
    vifs.push({
      vif: vifRef,
      device: vif.device,
      mac: vif.MAC,
      mtu: toInt(vif.MTU),
      sourceNetworkName: srcName,
      network: target,
      networkName: dest.networks.get(target)?.name_label ?? target,
    })
  }
  return vifs.sort((a, b) => a.device.localeCompare(b.device, 'en', { numeric: true }))
}

function checkSpace(
  source: PoolInventory,
  dest: PoolInventory,
  srRef: string,
  vms: readonly PlannedVm[],
  errors: string[]
): SpaceCheck[] {
  const sr = dest.srs.get(srRef)
  if (sr === undefined) return []
  // LVM-based SRs (thick provisioning) allocate a disk's whole virtual size.
  const thick = /^lvm/.test(sr.type ?? '')
  const size = (vdi: { virtual_size: number | string; physical_utilisation: number | string }) =>
    toInt(thick ? vdi.virtual_size : vdi.physical_utilisation)
  let required = 0
  for (const vm of vms) {
    // A copy that already exists (resume after `copied`) needs no more space.
    if (
      vm.sourceGone ||
      (vm.resume && vm.resume.step !== 'planned' && vm.resume.step !== 'copying')
    )
      continue
    for (const disk of vm.disks) {
      required += thick ? disk.virtualSize : disk.physicalUtilisation
    }
    if (vm.suspendVdi !== undefined) {
      const vdi = source.vdis.get(vm.suspendVdi)
      if (vdi !== undefined) required += size(vdi)
    }
    // A native migration brings the VM's snapshots and their disks along (a stream does not).
    if (vm.method !== 'stream') {
      for (const snapshot of source.vms.get(vm.ref)?.snapshots ?? []) {
        for (const vbd of source.vms.get(snapshot)?.VBDs ?? []) {
          const record = source.vbds.get(vbd)
          const vdi = record?.type === 'Disk' ? source.vdis.get(record.VDI) : undefined
          if (vdi !== undefined) required += size(vdi)
        }
      }
    }
  }
  const free = toInt(sr.physical_size) - toInt(sr.physical_utilisation)
  if (required > free) {
    errors.push(
      `destination SR ${sr.name_label}: the copies need ${formatBytes(required)}, it has ${formatBytes(free)} free`
    )
  }
  return [{ sr: sr.uuid, name: sr.name_label, requiredBytes: required, freeBytes: free }]
}

/** `1.5 GiB` */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let value = bytes
  let unit = 0
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`
}
