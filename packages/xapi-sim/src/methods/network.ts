import { XapiFailure } from '../errors.js'
import { newNetwork } from '../model/records.js'
import { defineMethod, toInt, toMap, toRecordArg, toStr } from '../rpc/registry.js'

// network.create(args: network record) → ref (xapi_network.ml `create`): an internal network
// until a PIF joins it; an empty bridge gets the next free `xapiN`.
defineMethod('network.create', {
  arity: [1],
  async: true,
  run(ctx, [args]) {
    const a = toRecordArg(args)
    const taken = new Set([...ctx.db.all('network').values()].map((n) => n.bridge as string))
    let bridge = a.bridge === undefined ? '' : toStr(a.bridge, 'bridge')
    if (bridge === '') {
      let n = 0
      while (taken.has(`xapi${n}`)) n++
      bridge = `xapi${n}`
    } else if (taken.has(bridge)) {
      throw new XapiFailure('BRIDGE_NAME_EXISTS', [bridge])
    }
    return ctx.db.create(
      'network',
      newNetwork({
        name_label: a.name_label === undefined ? '' : toStr(a.name_label, 'name_label'),
        name_description:
          a.name_description === undefined ? '' : toStr(a.name_description, 'name_description'),
        MTU: a.MTU === undefined ? 1500 : toInt(a.MTU, 'MTU'),
        other_config: a.other_config === undefined ? {} : toMap(a.other_config, 'other_config'),
        bridge,
      })
    )
  },
})

// network.destroy (xapi_network.ml `destroy`): refused while a VIF on it is attached
// (NETWORK_CONTAINS_VIF) or a PIF is on it (NETWORK_CONTAINS_PIF); the unattached VIFs on it go
// with it.
defineMethod('network.destroy', {
  arity: [1],
  async: true,
  run(ctx, [net]) {
    const { db } = ctx
    const rec = db.require('network', net)
    const vifs = rec.VIFs as string[]
    const connected = vifs.filter((v) => db.get(v)?.currently_attached === true)
    if (connected.length > 0) throw new XapiFailure('NETWORK_CONTAINS_VIF', connected)
    const pifs = rec.PIFs as string[]
    if (pifs.length > 0) throw new XapiFailure('NETWORK_CONTAINS_PIF', [...pifs])
    for (const vif of [...vifs]) {
      db.removeFromSet(db.get(vif)?.VM as string, 'VIFs', vif)
      db.destroy(vif)
    }
    db.destroy(net as string)
  },
})
