import { DiskContent } from '../disk/content.js'
import { XapiFailure } from '../errors.js'
import { copyVm } from '../model/vm-copy.js'
import { createVbd, createVdi, destroyVdi } from '../model/storage.js'
import { setHalted } from '../model/vm-power.js'
import { refreshVm, withVmOperation } from '../model/vm-state.js'
import { defineMethod, toStr, type CallCtx } from '../rpc/registry.js'
import { DURATIONS, work } from './work.js'

const NULL = 'OpaqueRef:NULL'

function disks(ctx: CallCtx, vm: string): { vbd: string; vdi: string }[] {
  return (ctx.db.get(vm)!.VBDs as string[])
    .map((vbd) => ({ vbd, vdi: ctx.db.get(vbd)?.VDI as string }))
    .filter(({ vdi }) => ctx.db.has('VDI', vdi))
}

// VM.checkpoint(vm, new_name): a snapshot with the memory image (the snapshot is Suspended).
defineMethod('VM.checkpoint', {
  arity: [2],
  async: true,
  run: (ctx, [vm, name]) =>
    withVmOperation(ctx.db, vm as string, 'checkpoint', ctx.task.ref, async (rec) => {
      await work(ctx, DURATIONS.snapshot + DURATIONS.suspend, { to: 0.9 })
      const snap = copyVm(ctx.db, vm as string, { name: toStr(name, 'new_name'), snapshot: true })
      if (rec.power_state === 'Running' || rec.power_state === 'Paused') {
        const [pool] = ctx.db.all('pool').values()
        const sr = [rec.suspend_SR, pool?.suspend_image_SR, pool?.default_SR].find((x) =>
          ctx.db.has('SR', x)
        )
        if (sr !== undefined) {
          const image = createVdi(ctx.db, {
            sr: sr as string,
            content: DiskContent.generated(
              `checkpoint/${rec.uuid}/${Date.now()}`,
              Number(rec.memory_static_max),
              0.25
            ),
            record: {
              name_label: `Suspend image for ${name}`,
              type: 'suspend',
              is_a_snapshot: true,
            },
          })
          ctx.db.update(snap, { power_state: 'Suspended', suspend_VDI: image })
          refreshVm(ctx.db, snap)
        }
      }
      return snap
    }),
})

// VM.revert(snapshot): the snapshotted VM gets copies of the snapshot's disks and its power state
// (Halted, or Suspended for a checkpoint); a live VM is stopped first.
defineMethod('VM.revert', {
  arity: [1],
  async: true,
  run: (ctx, [snapArg]) =>
    withVmOperation(ctx.db, snapArg as string, 'revert', ctx.task.ref, async (snap) => {
      const vm = snap.snapshot_of as string
      if (!ctx.db.has('VM', vm)) throw new XapiFailure('VM_REVERT_FAILED', [snapArg as string, vm])
      await work(ctx, DURATIONS.snapshot, { to: 0.9 })
      const rec = ctx.db.get(vm)!
      if (rec.power_state !== 'Halted') setHalted(ctx.db, vm)
      for (const { vbd, vdi } of disks(ctx, vm)) {
        ctx.db.removeFromSet(vm, 'VBDs', vbd)
        ctx.db.destroy(vbd)
        destroyVdi(ctx.db, vdi)
      }
      for (const { vbd, vdi } of disks(ctx, snapArg as string)) {
        const content = ctx.db.vdiContent.get(vdi)
        const src = ctx.db.get(vdi)!
        const vbdRec = ctx.db.get(vbd)!
        const copy = content
          ? createVdi(ctx.db, {
              sr: src.SR as string,
              content: content.clone(),
              record: {
                name_label: src.name_label,
                name_description: src.name_description,
                type: src.type,
              },
            })
          : NULL
        createVbd(ctx.db, vm, copy, {
          userdevice: vbdRec.userdevice,
          bootable: vbdRec.bootable,
          mode: vbdRec.mode,
          type: vbdRec.type,
        })
      }
      const image = snap.suspend_VDI as string
      if (snap.power_state === 'Suspended' && ctx.db.has('VDI', image)) {
        const content = ctx.db.vdiContent.get(image)!
        const copy = createVdi(ctx.db, {
          sr: ctx.db.get(image)!.SR as string,
          content: content.clone(),
          record: { name_label: `Suspend image for ${rec.name_label}`, type: 'suspend' },
        })
        ctx.db.update(vm, { power_state: 'Suspended', suspend_VDI: copy })
      }
      ctx.db.update(vm, { parent: snapArg as string })
      refreshVm(ctx.db, vm)
    }),
})
