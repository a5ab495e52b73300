import { XapiFailure } from '../errors.js'
import { createTask, destroyTask, requestCancel } from '../model/tasks.js'
import { defineMethod, toFloat, toList, toStr } from '../rpc/registry.js'

const STATUSES = ['pending', 'success', 'failure', 'cancelling', 'cancelled']

// task.create(label, description): a caller-owned task (for HTTP-handler style flows).
defineMethod('task.create', {
  arity: [2],
  run: (ctx, [label, description]) =>
    createTask(ctx.db, {
      name_label: toStr(label),
      name_description: toStr(description),
      hostRef: ctx.host.ref,
      // TaskHelper.make: allowed_operations = [] (only xapi's workers mark tasks cancellable)
      cancellable: false,
    }),
})

defineMethod('task.destroy', {
  arity: [1],
  run(ctx, [ref]) {
    ctx.db.require('task', ref)
    destroyTask(ctx.db, ref as string)
  },
})

// xapi records the request (it does not consult allowed_operations); the worker ends the task
// as cancelled at its next cancellable point, or finishes normally if it reaches none.
defineMethod('task.cancel', {
  arity: [1],
  async: true,
  run(ctx, [ref]) {
    ctx.db.require('task', ref)
    requestCancel(ctx.db, ref as string, ctx.task.ref)
  },
})

defineMethod('task.set_progress', {
  arity: [2],
  run(ctx, [ref, value]) {
    ctx.db.require('task', ref)
    ctx.db.update(ref as string, { progress: toFloat(value, 'value') })
  },
})

defineMethod('task.set_status', {
  arity: [2],
  run(ctx, [ref, value]) {
    const t = ctx.db.require('task', ref)
    const status = toStr(value, 'value')
    if (!STATUSES.includes(status)) throw new XapiFailure('FIELD_TYPE_ERROR', ['value'])
    const finished = status !== 'pending' && t.status === 'pending'
    ctx.db.update(ref as string, {
      status,
      ...(finished ? { finished: new Date(), allowed_operations: [], current_operations: {} } : {}),
      ...(status === 'success' ? { progress: 1 } : {}),
    })
  },
})

defineMethod('task.set_result', {
  arity: [2],
  run(ctx, [ref, value]) {
    ctx.db.require('task', ref)
    ctx.db.update(ref as string, { result: toStr(value, 'value') })
  },
})

defineMethod('task.set_error_info', {
  arity: [2],
  run(ctx, [ref, value]) {
    ctx.db.require('task', ref)
    const info = toList(value, 'value').map((x) => String(x))
    ctx.db.update(ref as string, { error_info: info })
  },
})
