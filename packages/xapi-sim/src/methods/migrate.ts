import { XapiFailure } from '../errors.js'
import type { PoolDb, SimRecord } from '../model/db.js'
import { newVif, newVmMetrics } from '../model/records.js'
import { createVbd, createVdi, destroyVdi, refreshSr } from '../model/storage.js'
import { destroyVmRecord } from '../model/vm-copy.js'
import { assertCanRunOn, setHalted, setRunning } from '../model/vm-power.js'
import { assertVmOperation, refreshVm, vmMemory, withVmOperation } from '../model/vm-state.js'
import { defineMethod, toMap, type CallCtx } from '../rpc/registry.js'
import type { PoolRuntime, SimState } from '../state.js'
import { DURATIONS, work } from './work.js'

const NULL = 'OpaqueRef:NULL'
/** xapi refuses a 4th concurrent storage migration from one host. */
export const MAX_STORAGE_MIGRATES = 3

const inFlight = new WeakMap<SimState, Map<string, number>>()

// host.migrate_receive(host, network, options), on the destination pool.
defineMethod('host.migrate_receive', {
  arity: [3],
  async: true,
  run(ctx, [host, network, options]) {
    ctx.db.require('host', host)
    ctx.db.require('network', network)
    toMap(options, 'options')
    const s = ctx.state.createSession(ctx.pool, 'migrate_receive')
    const hostUrl = ctx.state.hostByRef(host as string)!.url
    return {
      SM: `${hostUrl}/services/SM?session_id=${s.ref}`,
      host: host as string,
      xenops: `${hostUrl}/services/xenops?session_id=${s.ref}`,
      session_id: s.ref,
      master: ctx.state.masterOf(ctx.pool).url,
    }
  },
})

type Plan = {
  destPool: PoolRuntime
  destHost: string
  samePool: boolean
  vdiTarget: Map<string, string>
  vifTarget: Map<string, string>
  copy: boolean
}

function allVdis(db: PoolDb, vm: SimRecord): string[] {
  return (vm.VBDs as string[])
    .map((vbd) => db.get(vbd)?.VDI as string)
    .filter((vdi) => db.has('VDI', vdi))
}

/** Checks of VM.assert_can_migrate / VM.migrate_send; returns what the migration will do. */
function planMigration(
  ctx: CallCtx,
  vmRef: string,
  destArg: unknown,
  vdiArg: unknown,
  vifArg: unknown,
  optArg: unknown,
  recheck = false
): Plan {
  const dest = toMap(destArg, 'dest')
  const vdiMap = toMap(vdiArg, 'vdi_map')
  const vifMap = toMap(vifArg, 'vif_map')
  const options = toMap(optArg, 'options')
  // On the re-check after the copy the VM carries our own migrate_send operation.
  const vm = recheck
    ? ctx.db.require('VM', vmRef)
    : assertVmOperation(ctx.db, vmRef, 'migrate_send')
  const destSession =
    dest.session_id !== undefined ? ctx.state.sessions.get(dest.session_id) : undefined
  if (!destSession) throw new XapiFailure('VM_MIGRATE_CONTACT_REMOTE_SERVICE_FAILED', [])
  const destPool = destSession.pool
  const ddb = destPool.db
  const destHost = dest.host ?? ''
  ddb.require('host', destHost)
  const samePool = destPool === ctx.pool
  const vdiTarget = new Map<string, string>()
  for (const vdi of allVdis(ctx.db, vm)) {
    const target = vdiMap[vdi] ?? (samePool ? (ctx.db.get(vdi)!.SR as string) : undefined)
    if (target === undefined) throw new XapiFailure('VDI_NOT_IN_MAP', [vdi])
    ddb.require('SR', target)
    vdiTarget.set(vdi, target)
  }
  const vifTarget = new Map<string, string>()
  for (const vif of vm.VIFs as string[]) {
    const target = vifMap[vif] ?? (samePool ? (ctx.db.get(vif)?.network as string) : undefined)
    if (target === undefined) throw new XapiFailure('VIF_NOT_IN_MAP', [vif])
    ddb.require('network', target)
    vifTarget.set(vif, target)
  }
  if (vm.power_state === 'Running') {
    const h = ddb.get(destHost)!
    if (!h.enabled) throw new XapiFailure('HOST_DISABLED', [destHost])
    if (!samePool || vm.resident_on !== destHost) {
      const free = ddb.get(h.metrics as string)?.memory_free ?? 0
      if (vmMemory(vm) > free)
        throw new XapiFailure('HOST_NOT_ENOUGH_FREE_MEMORY', [String(vmMemory(vm)), String(free)])
    }
  }
  return { destPool, destHost, samePool, vdiTarget, vifTarget, copy: options.copy === 'true' }
}

/** Copies a VM (disks, VIFs, snapshots) into another pool's DB; returns its new ref. */
function transplant(ctx: CallCtx, vmRef: string, plan: Plan, snapshotOf = NULL): string {
  const sdb = ctx.db
  const ddb = plan.destPool.db
  const vm = sdb.get(vmRef)!
  const destPoolRec = ddb.get(plan.destPool.ref)!
  const rec: SimRecord = structuredClone({ ...vm })
  if (plan.copy) delete rec.uuid
  Object.assign(rec, {
    allowed_operations: [],
    current_operations: {},
    resident_on: NULL,
    scheduled_to_be_resident_on: NULL,
    affinity: NULL,
    VBDs: [],
    VIFs: [],
    snapshots: [],
    suspend_VDI: NULL,
    suspend_SR: NULL,
    parent: NULL,
    children: [],
    appliance: NULL,
    guest_metrics: NULL,
    snapshot_of: snapshotOf,
    metrics: ddb.create('VM_metrics', newVmMetrics({ install_time: new Date() })),
    power_state: vm.power_state === 'Running' ? 'Halted' : vm.power_state,
    domid: -1,
  })
  const ref = ddb.create('VM', rec)
  const guest = sdb.guests.get(vmRef)
  if (guest) ddb.guests.set(ref, { ...guest })
  const srs = new Set<string>()
  for (const vbdRef of vm.VBDs as string[]) {
    const vbd = sdb.get(vbdRef)
    if (!vbd) continue
    let newVdi = NULL
    const vdi = sdb.get(vbd.VDI as string)
    if (vdi) {
      const original = snapshotOf === NULL ? (vbd.VDI as string) : (vdi.snapshot_of as string)
      const sr =
        plan.vdiTarget.get(vbd.VDI as string) ??
        plan.vdiTarget.get(original) ??
        (destPoolRec.default_SR as string)
      const content = sdb.vdiContent.get(vbd.VDI as string)
      const vdiRec = structuredClone({ ...vdi })
      for (const k of ['uuid', 'SR', 'VBDs', 'snapshots', 'snapshot_of', 'location'])
        delete vdiRec[k]
      newVdi = content
        ? createVdi(ddb, { sr, content: content.clone(), record: vdiRec })
        : ddb.create('VDI', { ...vdiRec, SR: sr, VBDs: [], snapshots: [] })
      srs.add(sr)
    }
    const vbdRec = structuredClone({ ...vbd })
    for (const k of ['uuid', 'VM', 'VDI']) delete vbdRec[k]
    createVbd(ddb, ref, newVdi, { ...vbdRec, currently_attached: false })
  }
  for (const vifRef of vm.VIFs as string[]) {
    const vif = sdb.get(vifRef)
    if (!vif) continue
    const network = plan.vifTarget.get(vifRef) ?? (ddb.filter('network')[0]?.[0] as string)
    const v = ddb.create(
      'VIF',
      newVif({
        device: vif.device,
        network,
        VM: ref,
        MAC: vif.MAC,
        MTU: vif.MTU,
        other_config: structuredClone(vif.other_config),
      })
    )
    ddb.addToSet(ref, 'VIFs', v)
    ddb.addToSet(network, 'VIFs', v)
  }
  if (vm.power_state === 'Suspended' && sdb.has('VDI', vm.suspend_VDI)) {
    const content = sdb.vdiContent.get(vm.suspend_VDI as string)
    const sr = destPoolRec.default_SR as string
    if (content && ddb.has('SR', sr)) {
      const sv = createVdi(ddb, {
        sr,
        content: content.clone(),
        record: { name_label: `Suspend image for ${vm.name_label}`, type: 'suspend' },
      })
      ddb.update(ref, { suspend_VDI: sv, suspend_SR: sr })
    }
  }
  for (const snap of vm.snapshots as string[]) {
    if (!sdb.has('VM', snap)) continue
    const s = transplant(ctx, snap, plan, ref)
    ddb.addToSet(ref, 'snapshots', s)
  }
  for (const sr of srs) refreshSr(ddb, sr)
  if (vm.power_state === 'Running') setRunning(ddb, ref, plan.destHost)
  refreshVm(ddb, ref)
  return ref
}

/** Removes a migrated VM from the source pool with its disks and snapshots. */
function removeSource(db: PoolDb, vmRef: string): void {
  const vm = db.get(vmRef)
  if (!vm) return
  for (const snap of [...(vm.snapshots as string[])]) removeSource(db, snap)
  const vdis = allVdis(db, vm)
  if (vm.power_state !== 'Halted') setHalted(db, vmRef)
  destroyVmRecord(db, vmRef)
  for (const vdi of vdis) destroyVdi(db, vdi)
}

async function migrateSend(ctx: CallCtx, args: unknown[]): Promise<string> {
  const [vmArg, dest, _live, vdiMap, vifMap, options] = args
  const vmRef = vmArg as string
  planMigration(ctx, vmRef, dest, vdiMap, vifMap, options) // fail before counting
  const vm = ctx.db.get(vmRef)!
  const source =
    vm.resident_on !== NULL ? (vm.resident_on as string) : ctx.state.masterOf(ctx.pool).ref
  let counts = inFlight.get(ctx.state)
  if (!counts) inFlight.set(ctx.state, (counts = new Map()))
  const n = counts.get(source) ?? 0
  if (n >= MAX_STORAGE_MIGRATES)
    throw new XapiFailure('TOO_MANY_STORAGE_MIGRATES', [String(MAX_STORAGE_MIGRATES)])
  counts.set(source, n + 1)
  try {
    return await withVmOperation(ctx.db, vmRef, 'migrate_send', ctx.task.ref, async (rec) => {
      let bytes = 0
      for (const vdi of allVdis(ctx.db, rec)) bytes += Number(ctx.db.get(vdi)!.physical_utilisation)
      if (rec.power_state === 'Running')
        bytes += vmMemory(rec) * (DURATIONS.migrateDiskBytesPerS / DURATIONS.migrateMemoryBytesPerS)
      await work(ctx, (bytes / DURATIONS.migrateDiskBytesPerS) * 1000 + 500, {
        to: 0.95,
        cancellable: true,
      })
      // Re-check after the copy: the destination may have changed meanwhile.
      const again = planMigration(ctx, vmRef, dest, vdiMap, vifMap, options, true)
      if (again.samePool) return moveWithinPool(ctx, vmRef, again)
      const newRef = transplant(ctx, vmRef, again)
      if (!again.copy) removeSource(ctx.db, vmRef)
      return newRef
    })
  } finally {
    counts.set(source, (counts.get(source) ?? 1) - 1)
  }
}

/** Storage motion inside one pool: VDIs change SR, VIFs network, the VM host. */
function moveWithinPool(ctx: CallCtx, vmRef: string, plan: Plan): string {
  const db = ctx.db
  for (const [vdi, sr] of plan.vdiTarget) {
    const old = db.get(vdi)!.SR as string
    if (old === sr) continue
    db.removeFromSet(old, 'VDIs', vdi)
    db.update(vdi, { SR: sr })
    db.addToSet(sr, 'VDIs', vdi)
    refreshSr(db, old)
    refreshSr(db, sr)
  }
  for (const [vif, net] of plan.vifTarget) {
    const old = db.get(vif)!.network as string
    if (old === net) continue
    db.removeFromSet(old, 'VIFs', vif)
    db.update(vif, { network: net })
    db.addToSet(net, 'VIFs', vif)
  }
  const vm = db.get(vmRef)!
  if (vm.power_state === 'Running' && vm.resident_on !== plan.destHost) {
    assertCanRunOn(db, vmRef, plan.destHost)
    setRunning(db, vmRef, plan.destHost)
  }
  return vmRef
}

// VM.migrate_send(vm, dest, live, vdi_map, vif_map, options, vgpu_map = {}, vdi_format_map = {})
defineMethod('VM.migrate_send', {
  arity: [8, 7, 6],
  async: true,
  run: (ctx, args) => migrateSend(ctx, args),
})

// VM.assert_can_migrate(vm, dest, live, vdi_map, vif_map, options, vgpu_map = {})
defineMethod('VM.assert_can_migrate', {
  arity: [7, 6],
  async: true,
  run(ctx, [vm, dest, _live, vdiMap, vifMap, options]) {
    planMigration(ctx, vm as string, dest, vdiMap, vifMap, options)
  },
})
