import type { XmlRpcValue, XvaDisk, XvaHeader, XvaObject } from '@xapi-ops/xapi-formats'
import type { SimContext } from '../context.js'
import { DiskContent } from '../disk/content.js'
import type { SimRecord } from '../model/db.js'
import { randomMac } from '../model/records.js'

const NULL = 'OpaqueRef:NULL'
const EXPORT_ID = /^Ref:\d+$/

export type ImportMode =
  | { kind: 'full'; sr: string }
  /** `vdiMap`: source VDI uuid → destination VDI uuid (`vdi:<a>=<b>` query parameters). */
  | { kind: 'metadata'; vdiMap: Map<string, string> }

/** Makes an archive value fit a simulator record field: ints, dates, bools as the template has them. */
function coerce(v: XmlRpcValue, template: unknown): unknown {
  if (typeof template === 'number' && typeof v === 'string' && /^-?\d+(\.\d+)?$/.test(v))
    return Number(v)
  if (template instanceof Date && typeof v === 'string') return new Date(v)
  if (typeof template === 'boolean' && typeof v === 'string') return v === 'true' || v === '1'
  return v
}

/**
 * Creates the objects of an imported archive (xapi's `Import` handlers, simplified): VMs, VBDs,
 * VDIs (on the target SR, filled by `writeBlock`), VIFs on the network of the same `name_label`
 * or bridge, or on a network the import creates. Everything created is undone by `cleanup`.
 */
export class VmImport {
  readonly #ctx: SimContext
  readonly #mode: ImportMode
  readonly #restore: boolean
  readonly #force: boolean
  readonly #taskRef: string
  /** Archive id → local ref. */
  readonly #ids = new Map<string, string>()
  readonly #created: { cls: string; ref: string }[] = []
  readonly #contents = new Map<string, DiskContent>()
  #vms: { ref: string; snapshot: boolean }[] = []

  constructor(
    ctx: SimContext,
    opts: { mode: ImportMode; restore: boolean; force: boolean; taskRef: string }
  ) {
    this.#ctx = ctx
    this.#mode = opts.mode
    this.#restore = opts.restore
    this.#force = opts.force
    this.#taskRef = opts.taskRef
  }

  #record(cls: string, o: XvaObject, overrides: SimRecord): SimRecord {
    const template = this.#ctx.records[cls]?.({}) ?? {}
    const out: SimRecord = {}
    const map = (v: XmlRpcValue): unknown => {
      if (typeof v === 'string' && EXPORT_ID.test(v)) return this.#ids.get(v) ?? NULL
      if (Array.isArray(v)) return v.map(map).filter((x) => x !== NULL)
      return v
    }
    for (const [k, v] of Object.entries(o.snapshot))
      out[k] = coerce(map(v) as XmlRpcValue, template[k])
    return this.#ctx.records[cls]
      ? this.#ctx.records[cls]({ ...out, ...overrides })
      : { ...out, ...overrides }
  }

  #create(cls: string, record: SimRecord): string {
    const ref = this.#ctx.db.create(cls, record)
    this.#created.push({ cls, ref })
    return ref
  }

  /** Creates the objects once ova.xml is read (`disks`: what the stream will carry). */
  create(header: XvaHeader, disks: XvaDisk[]): void {
    const { db } = this.#ctx
    const of = (cls: string) => header.objects.filter((o) => o.class === cls)
    for (const net of of('network')) this.#ids.set(net.id, this.#network(net))
    if (this.#mode.kind === 'full') {
      for (const d of disks) {
        const content = DiskContent.empty(d.virtualSize)
        const rec = this.#record('VDI', d.vdi, {})
        const keep = [
          'name_label',
          'name_description',
          'type',
          'sharable',
          'read_only',
          'other_config',
          'tags',
          'sm_config',
        ]
        const ref = this.#ctx.storage.createVdi({
          sr: this.#mode.sr,
          content,
          record: Object.fromEntries(keep.filter((k) => k in rec).map((k) => [k, rec[k]])),
        })
        this.#created.push({ cls: 'VDI', ref })
        this.#ids.set(d.id, ref)
        this.#contents.set(d.id, content)
      }
    } else {
      for (const vdi of of('VDI')) {
        const uuid = String(vdi.snapshot.uuid ?? '')
        const local = db.refByUuid(this.#mode.vdiMap.get(uuid) ?? uuid)
        if (local !== undefined && db.classOf(local) === 'VDI') this.#ids.set(vdi.id, local)
      }
    }
    for (const vm of of('VM')) this.#createVm(vm)
    // snapshot links: a snapshot may come before its VM in the archive
    for (const vm of of('VM')) {
      const ref = this.#ids.get(vm.id)
      const parent = this.#ids.get(String(vm.snapshot.snapshot_of))
      if (ref === undefined || parent === undefined || vm.snapshot.is_a_snapshot !== true) continue
      db.update(ref, { snapshot_of: parent })
      db.addToSet(parent, 'snapshots', ref)
    }
    for (const vbd of of('VBD')) {
      const vm = this.#ids.get(String(vbd.snapshot.VM))
      if (vm === undefined) continue
      const vdi = this.#ids.get(String(vbd.snapshot.VDI))
      const isCd = vbd.snapshot.type === 'CD'
      if (vdi === undefined && !isCd) {
        if (this.#mode.kind === 'metadata' && !this.#force) {
          throw new this.#ctx.XapiFailure('IMPORT_ERROR_ATTACHED_DISKS_NOT_FOUND', [])
        }
        continue
      }
      const rec = this.#record('VBD', vbd, {
        uuid: '',
        currently_attached: false,
        VDI: vdi ?? NULL,
        empty: vdi === undefined,
        metrics: NULL,
      })
      const ref = this.#ctx.storage.createVbd(vm, vdi ?? NULL, rec)
      this.#created.push({ cls: 'VBD', ref })
    }
    for (const vif of of('VIF')) {
      const vm = this.#ids.get(String(vif.snapshot.VM))
      const net = this.#ids.get(String(vif.snapshot.network))
      if (vm === undefined || net === undefined) continue
      const mac = this.#restore ? String(vif.snapshot.MAC ?? randomMac()) : randomMac()
      const ref = this.#create(
        'VIF',
        this.#record('VIF', vif, {
          uuid: '',
          VM: vm,
          network: net,
          MAC: mac,
          currently_attached: false,
          metrics: NULL,
        })
      )
      db.addToSet(vm, 'VIFs', ref)
      db.addToSet(net, 'VIFs', ref)
    }
    for (const { ref } of this.#vms) this.#ctx.vm.refresh(ref)
    const task = this.#ctx.tasks.get(this.#taskRef)
    if (task)
      db.update(this.#taskRef, {
        other_config: { ...task.other_config, object_creation: 'complete' },
      })
  }

  /**
   * xapi (import.ml, `Net`): the network of the same name_label, else of the same bridge, else a
   * new one from the archive's record, marked `other_config:import_task` and removed again if
   * the import fails.
   */
  #network(net: XvaObject): string {
    const { db } = this.#ctx
    const { name_label: name, bridge } = net.snapshot
    const hit =
      db.find('network', (r) => r.name_label === name) ??
      (bridge ? db.find('network', (r) => r.bridge === bridge) : undefined)
    if (hit) return hit[0]
    const record = this.#record('network', net, {
      uuid: '',
      VIFs: [],
      PIFs: [],
      current_operations: {},
      allowed_operations: [],
    })
    record.other_config = {
      ...(record.other_config as Record<string, string>),
      import_task: this.#taskRef,
    }
    return this.#create('network', record)
  }

  #createVm(o: XvaObject): void {
    const { db } = this.#ctx
    const uuid = String(o.snapshot.uuid ?? '')
    if (this.#restore && uuid !== '') {
      const existing = db.refByUuid(uuid)
      if (existing !== undefined && db.classOf(existing) === 'VM') {
        const old = db.get(existing)!
        if (old.power_state !== 'Halted') {
          if (this.#force) return
          throw new this.#ctx.XapiFailure('VM_BAD_POWER_STATE', [
            existing,
            'halted',
            String(old.power_state).toLowerCase(),
          ])
        }
        const [have, got] = [Number(old.version ?? 0), Number(o.snapshot.version ?? 0)]
        if (got <= have && !this.#force) {
          throw new this.#ctx.XapiFailure('VM_TO_IMPORT_IS_NOT_NEWER_VERSION', [
            existing,
            have,
            got,
          ])
        }
        for (const r of old.VBDs as string[]) {
          db.removeFromSet(db.get(r)?.VDI as string, 'VBDs', r)
          db.destroy(r)
        }
        for (const r of old.VIFs as string[]) {
          db.removeFromSet(db.get(r)?.network as string, 'VIFs', r)
          db.destroy(r)
        }
        db.destroy(existing)
      }
    }
    const suspendVdi = this.#ids.get(String(o.snapshot.suspend_VDI)) ?? NULL
    const suspended = o.snapshot.power_state === 'Suspended' && suspendVdi !== NULL
    const snapshot = o.snapshot.is_a_snapshot === true
    const rec = this.#record('VM', o, {
      uuid: this.#restore && uuid !== '' ? uuid : '',
      power_state: suspended ? 'Suspended' : 'Halted',
      suspend_VDI: suspended ? suspendVdi : NULL,
      resident_on: NULL,
      scheduled_to_be_resident_on: NULL,
      affinity: NULL,
      VBDs: [],
      VIFs: [],
      consoles: [],
      crash_dumps: [],
      current_operations: {},
      allowed_operations: [],
      metrics: NULL,
      guest_metrics: NULL,
      snapshots: [],
      children: [],
      domid: -1,
      other_config: {
        ...(o.snapshot.other_config as SimRecord | undefined),
        import_task: this.#taskRef,
      },
    })
    const ref = this.#create('VM', rec)
    this.#ids.set(o.id, ref)
    this.#vms.push({ ref, snapshot })
  }

  /** Stores an aligned 1 MiB block of an imported disk. */
  writeBlock(disk: XvaDisk, index: number, data: Buffer): void {
    this.#contents.get(disk.id)?.writeBlock(index, data)
  }

  /** `writeBlock` with the block as pieces (not kept) and their XXH64. */
  writeBlockPieces(disk: XvaDisk, index: number, pieces: readonly Buffer[], xxh64: bigint): void {
    this.#contents.get(disk.id)?.writeBlockPieces(index, pieces, xxh64)
  }

  /** After the stream: VDI sizes refreshed; the VM refs for the task result. */
  finish(): string[] {
    for (const [id] of this.#contents) this.#ctx.storage.refreshVdi(this.#ids.get(id)!)
    const vms = this.#vms.filter((v) => !v.snapshot)
    return (vms.length > 0 ? vms : this.#vms).map((v) => v.ref)
  }

  /** Destroys everything created (on failure, unless `force`). */
  cleanup(): void {
    const { db, storage } = this.#ctx
    for (const { cls, ref } of [...this.#created].reverse()) {
      const r = db.get(ref)
      if (!r) continue
      if (cls === 'VDI') storage.destroyVdi(ref)
      else if (cls === 'VBD' || cls === 'VIF') {
        db.removeFromSet(r.VM as string, `${cls}s`, ref)
        if (cls === 'VBD') db.removeFromSet(r.VDI as string, 'VBDs', ref)
        else db.removeFromSet(r.network as string, 'VIFs', ref)
        db.destroy(ref)
      } else db.destroy(ref)
    }
    this.#created.length = 0
  }
}
