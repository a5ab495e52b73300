import { XapiFailure } from '../errors.js'
import { newMessage } from '../model/records.js'
import { defineMethod, toInt, toStr } from '../rpc/registry.js'

const CLASSES = ['VM', 'Host', 'SR', 'Pool', 'VMPP', 'VMSS', 'PVS_proxy', 'VDI', 'Certificate']

// message.create(name, priority, cls, obj_uuid, body)
defineMethod('message.create', {
  arity: [5],
  run(ctx, [name, priority, cls, objUuid, body]) {
    const c = toStr(cls, 'cls')
    if (!CLASSES.includes(c)) throw new XapiFailure('FIELD_TYPE_ERROR', ['cls'])
    return ctx.db.create(
      'message',
      newMessage({
        name: toStr(name, 'name'),
        priority: toInt(priority, 'priority'),
        cls: c,
        obj_uuid: toStr(objUuid, 'obj_uuid'),
        body: toStr(body, 'body'),
      })
    )
  },
})

defineMethod('message.destroy', {
  arity: [1],
  run(ctx, [ref]) {
    ctx.db.require('message', ref)
    ctx.db.destroy(ref as string)
  },
})

// message.get_since(since: datetime) → map ref → record
defineMethod('message.get_since', {
  arity: [1],
  run(ctx, [since]) {
    const t = since instanceof Date ? since.getTime() : Date.parse(String(since))
    const out: Record<string, unknown> = {}
    for (const [ref, m] of ctx.db.all('message')) {
      if (Number.isNaN(t) || (m.timestamp as Date).getTime() > t) out[ref] = m
    }
    return out
  },
})
