import { DiskContent } from '../disk/content.js'
import { XapiFailure } from '../errors.js'
import type { SimRecord } from '../model/db.js'
import { createVbd, createVdi } from '../model/storage.js'
import { defineMethod, toBool, toInt, toMap, toStr, type CallCtx } from '../rpc/registry.js'

/*
 * VDI and VBD messages beyond the generated ones: VDI.create / snapshot / clone / copy,
 * VBD.create / destroy. Contents are DiskContent objects (cloned on copy).
 */

function record(v: unknown): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new XapiFailure('FIELD_TYPE_ERROR', ['args'])
  return v as Record<string, unknown>
}

// VDI.create(args: VDI record) → ref: an empty disk of virtual_size bytes on args.SR.
defineMethod('VDI.create', {
  arity: [1],
  async: true,
  run(ctx, [args]) {
    const a = record(args)
    const sr = toStr(a.SR, 'SR')
    ctx.db.require('SR', sr)
    const size = toInt(a.virtual_size, 'virtual_size')
    if (size < 0) throw new XapiFailure('FIELD_TYPE_ERROR', ['virtual_size'])
    return createVdi(ctx.db, {
      sr,
      content: DiskContent.empty(size),
      record: {
        name_label: a.name_label === undefined ? '' : toStr(a.name_label, 'name_label'),
        name_description:
          a.name_description === undefined ? '' : toStr(a.name_description, 'name_description'),
        type: a.type === undefined ? 'user' : toStr(a.type, 'type'),
        sharable: a.sharable === undefined ? false : toBool(a.sharable, 'sharable'),
        read_only: a.read_only === undefined ? false : toBool(a.read_only, 'read_only'),
        other_config: a.other_config === undefined ? {} : toMap(a.other_config, 'other_config'),
        sm_config: a.sm_config === undefined ? {} : toMap(a.sm_config, 'sm_config'),
        tags: Array.isArray(a.tags) ? a.tags.map(String) : [],
      },
    })
  },
})

function copyVdi(ctx: CallCtx, vdi: string, opts: { sr?: string; snapshot: boolean }): string {
  const rec = ctx.db.require('VDI', vdi)
  const sr = opts.sr ?? (rec.SR as string)
  ctx.db.require('SR', sr)
  const content = ctx.db.vdiContent.get(vdi) ?? DiskContent.empty(Number(rec.virtual_size))
  const copy: SimRecord = structuredClone({ ...rec })
  for (const k of ['uuid', 'SR', 'VBDs', 'snapshots', 'location', 'current_operations'])
    delete copy[k]
  Object.assign(copy, {
    is_a_snapshot: opts.snapshot,
    snapshot_of: opts.snapshot ? vdi : 'OpaqueRef:NULL',
    snapshot_time: opts.snapshot ? new Date() : new Date(0),
  })
  const ref = createVdi(ctx.db, { sr, content: content.clone(), record: copy })
  if (opts.snapshot) ctx.db.addToSet(vdi, 'snapshots', ref)
  return ref
}

// VDI.snapshot(vdi, driver_params = {}), VDI.clone(vdi, driver_params = {}), VDI.copy(vdi, sr)
defineMethod('VDI.snapshot', {
  arity: [2, 1],
  async: true,
  run: (ctx, [vdi]) => copyVdi(ctx, vdi as string, { snapshot: true }),
})
defineMethod('VDI.clone', {
  arity: [2, 1],
  async: true,
  run: (ctx, [vdi]) => copyVdi(ctx, vdi as string, { snapshot: false }),
})
defineMethod('VDI.copy', {
  arity: [2],
  async: true,
  run: (ctx, [vdi, sr]) => copyVdi(ctx, vdi as string, { snapshot: false, sr: toStr(sr, 'sr') }),
})

// VBD.create(args: VBD record) → ref
defineMethod('VBD.create', {
  arity: [1],
  async: true,
  run(ctx, [args]) {
    const a = record(args)
    const vm = toStr(a.VM, 'VM')
    const vmRec = ctx.db.require('VM', vm)
    const vdi = a.VDI === undefined ? 'OpaqueRef:NULL' : toStr(a.VDI, 'VDI')
    const empty = a.empty === undefined ? false : toBool(a.empty, 'empty')
    if (!empty) ctx.db.require('VDI', vdi)
    const userdevice = a.userdevice === undefined ? 'autodetect' : toStr(a.userdevice, 'userdevice')
    const used = (vmRec.VBDs as string[]).map((b) => ctx.db.get(b)?.userdevice)
    let device = userdevice
    if (userdevice === 'autodetect') {
      let i = 0
      while (used.includes(String(i))) i++
      device = String(i)
    } else if (used.includes(userdevice)) {
      throw new XapiFailure('DEVICE_ALREADY_EXISTS', [userdevice])
    }
    const vbd = createVbd(ctx.db, vm, empty ? 'OpaqueRef:NULL' : vdi, {
      userdevice: device,
      bootable: a.bootable === undefined ? false : toBool(a.bootable, 'bootable'),
      mode: a.mode === undefined ? 'RW' : toStr(a.mode, 'mode'),
      type: a.type === undefined ? 'Disk' : toStr(a.type, 'type'),
      empty,
      unpluggable: a.unpluggable === undefined ? true : toBool(a.unpluggable, 'unpluggable'),
      other_config: a.other_config === undefined ? {} : toMap(a.other_config, 'other_config'),
    })
    return vbd
  },
})

// VBD.destroy(vbd): refused while attached (OPERATION_NOT_ALLOWED), as xapi does for plugged VBDs.
defineMethod('VBD.destroy', {
  arity: [1],
  async: true,
  run(ctx, [vbd]) {
    const rec = ctx.db.require('VBD', vbd)
    if (rec.currently_attached)
      throw new XapiFailure('OPERATION_NOT_ALLOWED', ['VBD is currently attached'])
    if (ctx.db.has('VM', rec.VM)) ctx.db.removeFromSet(rec.VM as string, 'VBDs', vbd as string)
    if (ctx.db.has('VDI', rec.VDI)) ctx.db.removeFromSet(rec.VDI as string, 'VBDs', vbd as string)
    ctx.db.destroy(vbd as string)
  },
})

/** Free device numbers of a VM for VBDs (0–15) or VIFs (0–6), as strings. */
function freeDevices(
  ctx: CallCtx,
  vm: unknown,
  field: 'VBDs' | 'VIFs',
  max: number,
  key: string
): string[] {
  const rec = ctx.db.require('VM', vm)
  const used = new Set((rec[field] as string[]).map((r) => String(ctx.db.get(r)?.[key])))
  return Array.from({ length: max + 1 }, (_, i) => String(i)).filter((d) => !used.has(d))
}
defineMethod('VM.get_allowed_VBD_devices', {
  arity: [1],
  async: true, // datamodel default flags [Session; Async]
  run: (ctx, [vm]) => freeDevices(ctx, vm, 'VBDs', 15, 'userdevice'),
})
defineMethod('VM.get_allowed_VIF_devices', {
  arity: [1],
  async: true, // datamodel default flags [Session; Async]
  run: (ctx, [vm]) => freeDevices(ctx, vm, 'VIFs', 6, 'device'),
})
