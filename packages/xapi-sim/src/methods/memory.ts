import { XapiFailure } from '../errors.js'
import { assertVmOperation, hostFreeMemory } from '../model/vm-state.js'
import { defineMethod, toInt, type CallCtx } from '../rpc/registry.js'

/*
 * Memory and VCPU messages with xapi's constraint
 * static_min ≤ dynamic_min ≤ dynamic_max ≤ static_max (MEMORY_CONSTRAINT_VIOLATION).
 */

const CONSTRAINT = 'Memory limits must satisfy: static_min ≤ dynamic_min ≤ dynamic_max ≤ static_max'

function setLimits(ctx: CallCtx, vm: string, op: string, patch: Record<string, number>): void {
  const rec = assertVmOperation(ctx.db, vm, op)
  const next = {
    memory_static_min: Number(rec.memory_static_min),
    memory_dynamic_min: Number(rec.memory_dynamic_min),
    memory_dynamic_max: Number(rec.memory_dynamic_max),
    memory_static_max: Number(rec.memory_static_max),
    ...patch,
  }
  if (!(
    next.memory_static_min <= next.memory_dynamic_min &&
    next.memory_dynamic_min <= next.memory_dynamic_max &&
    next.memory_dynamic_max <= next.memory_static_max
  )) {
    throw new XapiFailure('MEMORY_CONSTRAINT_VIOLATION', [CONSTRAINT])
  }
  ctx.db.update(vm, next)
}

// VM.set_memory(self, value): static_max = dynamic_max = dynamic_min = value (Halted)
defineMethod('VM.set_memory', {
  arity: [2],
  async: true,
  run(ctx, [vm, value]) {
    const v = toInt(value, 'value')
    setLimits(ctx, vm as string, 'changing_memory_limits', {
      memory_static_max: v,
      memory_dynamic_max: v,
      memory_dynamic_min: v,
    })
  },
})
defineMethod('VM.set_memory_static_range', {
  arity: [3],
  async: true,
  run(ctx, [vm, min, max]) {
    setLimits(ctx, vm as string, 'changing_static_range', {
      memory_static_min: toInt(min, 'min'),
      memory_static_max: toInt(max, 'max'),
    })
  },
})
defineMethod('VM.set_memory_dynamic_range', {
  arity: [3],
  async: true,
  run(ctx, [vm, min, max]) {
    setLimits(ctx, vm as string, 'changing_dynamic_range', {
      memory_dynamic_min: toInt(min, 'min'),
      memory_dynamic_max: toInt(max, 'max'),
    })
  },
})
defineMethod('VM.set_VCPUs_number_live', {
  arity: [2],
  async: true,
  run(ctx, [vm, n]) {
    const rec = assertVmOperation(ctx.db, vm as string, 'changing_VCPUs_live')
    const count = toInt(n, 'nvcpu')
    if (count < 1 || count > Number(rec.VCPUs_max)) {
      throw new XapiFailure('INVALID_VALUE', ['nvcpu', String(count)])
    }
    ctx.db.update(vm as string, { VCPUs_at_startup: count })
    if (ctx.db.has('VM_metrics', rec.metrics))
      ctx.db.update(rec.metrics as string, { VCPUs_number: count })
  },
})
defineMethod('VM.compute_memory_overhead', {
  arity: [1],
  async: true,
  run: (ctx, [vm]) => Number(ctx.db.require('VM', vm).memory_overhead),
})
defineMethod('host.compute_free_memory', {
  arity: [1],
  async: true,
  run(ctx, [host]) {
    ctx.db.require('host', host)
    return hostFreeMemory(ctx.db, host as string)
  },
})
defineMethod('host.compute_memory_overhead', {
  arity: [1],
  async: true,
  run: (ctx, [host]) => Number(ctx.db.require('host', host).memory_overhead),
})
