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

// network.destroy (xapi_network.ml `destroy`): refused while VIFs or PIFs are on it.
defineMethod('network.destroy', {
  arity: [1],
  async: true,
  run(ctx, [net]) {
    const rec = ctx.db.require('network', net)
    if ((rec.VIFs as string[]).length > 0)
      throw new XapiFailure('NETWORK_CONTAINS_VIF', [...(rec.VIFs as string[])])
    if ((rec.PIFs as string[]).length > 0)
      throw new XapiFailure('NETWORK_CONTAINS_PIF', [...(rec.PIFs as string[])])
    ctx.db.destroy(net as string)
  },
})
