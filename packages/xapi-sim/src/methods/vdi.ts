import { XapiFailure } from '../errors.js'
import { destroyVdi } from '../model/storage.js'
import { defineMethod } from '../rpc/registry.js'

// VDI.destroy: refused while a VBD has it attached (VDI_IN_USE [vdi, destroy]).
defineMethod('VDI.destroy', {
  arity: [1],
  async: true,
  run(ctx, [vdi]) {
    const rec = ctx.db.require('VDI', vdi)
    const attached = (rec.VBDs as string[]).some(
      (vbd) => ctx.db.get(vbd)?.currently_attached === true
    )
    if (attached) throw new XapiFailure('VDI_IN_USE', [vdi as string, 'destroy'])
    destroyVdi(ctx.db, vdi as string)
  },
})
