import {
  isNullRef,
  type HostRecord,
  type PbdRecord,
  type PoolRecord,
  type Ref,
  type SrRecord,
  type VbdRecord,
  type VdiRecord,
  type VmRecord,
  type XapiClient,
} from '@xapi-ops/xapi'
import { exportFileName, type Compression } from './naming.js'

/** What vm-export reads of a pool, fetched once with `get_all_records`. */
export type PoolInventory = {
  readonly poolRef: Ref<'pool'>
  readonly pool: PoolRecord
  readonly vms: ReadonlyMap<Ref<'VM'>, VmRecord>
  readonly vbds: ReadonlyMap<Ref<'VBD'>, VbdRecord>
  readonly vdis: ReadonlyMap<Ref<'VDI'>, VdiRecord>
  readonly srs: ReadonlyMap<Ref<'SR'>, SrRecord>
  readonly pbds: ReadonlyMap<Ref<'PBD'>, PbdRecord>
  readonly hosts: ReadonlyMap<Ref<'host'>, HostRecord>
}

/** Reads the pool, its hosts, VMs and storage. */
export async function loadInventory(
  client: XapiClient,
  signal?: AbortSignal
): Promise<PoolInventory> {
  const opts = { signal }
  const [pools, vms, vbds, vdis, srs, pbds, hosts] = await Promise.all([
    client.getAllRecords('pool', opts),
    client.getAllRecords('VM', opts),
    client.getAllRecords('VBD', opts),
    client.getAllRecords('VDI', opts),
    client.getAllRecords('SR', opts),
    client.getAllRecords('PBD', opts),
    client.getAllRecords('host', opts),
  ])
  const first = [...pools][0]
  if (!first) throw new Error('the server reports no pool object')
  const [poolRef, pool] = first
  return { poolRef, pool, vms, vbds, vdis, srs, pbds, hosts }
}

/** What `--running` does with a running (or paused) VM. */
export type RunningMode = 'snapshot' | 'offline' | 'skip'

/** How a VM gets exported: as it is, from a snapshot, shut down first, or not at all. */
export type ExportAction = 'export' | 'snapshot' | 'offline' | 'skip'

/** One selected VM of the plan. */
export type ExportItem = {
  readonly ref: Ref<'VM'>
  readonly uuid: string
  readonly name: string
  readonly powerState: string
  readonly record: VmRecord
  readonly action: ExportAction
  /** The host whose transfer slots the export takes (resident host, else the storage's). */
  readonly host: Ref<'host'>
  readonly hostName: string
  /** File name in `--out`. */
  readonly file: string
  /** Expected size of the file: the disks' physical utilisation plus a margin. */
  readonly estimateBytes: number
  readonly vdis: readonly Ref<'VDI'>[]
}

/** Room for ova.xml and the tar framing. */
const METADATA_MARGIN = 1024 * 1024

/** Builds one {@link ExportItem} per selected VM. */
export function planExports(
  inventory: PoolInventory,
  selected: ReadonlyArray<{ readonly ref: string; readonly record: VmRecord }>,
  options: {
    readonly running: RunningMode
    readonly compression: Compression
    readonly metadataOnly: boolean
  }
): ExportItem[] {
  return selected.map(({ ref, record }) => {
    const vdis = exportedVdis(inventory, record)
    const running = record.power_state === 'Running' || record.power_state === 'Paused'
    const action: ExportAction = !running || options.metadataOnly ? 'export' : options.running
    const host = hostOf(inventory, record, vdis)
    const physical = vdis.reduce(
      (sum, v) => sum + (inventory.vdis.get(v)?.physical_utilisation ?? 0),
      0
    )
    return {
      ref: ref as Ref<'VM'>,
      uuid: record.uuid,
      name: record.name_label,
      powerState: record.power_state,
      record,
      action,
      host,
      hostName: inventory.hosts.get(host)?.name_label ?? host,
      file: exportFileName(record.name_label, record.uuid, options.compression),
      estimateBytes: METADATA_MARGIN + (options.metadataOnly ? 0 : physical),
      vdis,
    }
  })
}

/** The VDIs xapi streams for a VM: disks of non-CD VBDs, not on ISO SRs. */
export function exportedVdis(inventory: PoolInventory, vm: VmRecord): Ref<'VDI'>[] {
  const out: Ref<'VDI'>[] = []
  for (const vbdRef of vm.VBDs) {
    const vbd = inventory.vbds.get(vbdRef)
    if (!vbd || vbd.type === 'CD' || isNullRef(vbd.VDI)) continue
    const vdi = inventory.vdis.get(vbd.VDI)
    if (!vdi) continue
    if (inventory.srs.get(vdi.SR)?.content_type === 'iso') continue
    out.push(vbd.VDI)
  }
  return out
}

/**
 * The host an export loads: where the VM runs; else one that sees all its SRs (the master when
 * it does, as for shared storage); else the master.
 */
export function hostOf(
  inventory: PoolInventory,
  vm: VmRecord,
  vdis: readonly Ref<'VDI'>[]
): Ref<'host'> {
  const master = inventory.pool.master
  if (!isNullRef(vm.resident_on) && inventory.hosts.has(vm.resident_on)) return vm.resident_on
  let candidates: Set<Ref<'host'>> | undefined
  for (const vdiRef of vdis) {
    const sr = inventory.srs.get(inventory.vdis.get(vdiRef)?.SR as Ref<'SR'>)
    if (!sr) continue
    const seeing = new Set<Ref<'host'>>()
    for (const pbdRef of sr.PBDs) {
      const pbd = inventory.pbds.get(pbdRef)
      if (pbd?.currently_attached) seeing.add(pbd.host)
    }
    candidates = candidates ? new Set([...candidates].filter((h) => seeing.has(h))) : seeing
  }
  if (!candidates || candidates.size === 0 || candidates.has(master)) return master
  return [...candidates].sort()[0]!
}
