import { describeError } from '../../lib/errors.js'
import type { MigrateContext } from './migrate-vm.js'
import {
  assertNative,
  candidateHosts,
  prepareNative,
  releaseNative,
  retryStorageMigrates,
  type NativeRequest,
} from './native.js'
import type { PlannedVm } from './plan.js'
import { xapiCode } from './xapi.js'

/** How a VM is copied, or why it is skipped. */
export type Chosen =
  | { readonly method: 'native'; readonly req: NativeRequest }
  | { readonly method: 'stream' }
  | { readonly skip: string }

/** Resolves `auto` (native where `assert_can_migrate` passes, else stream) and `--running skip`. */
export async function chooseMethod(
  ctx: MigrateContext,
  vm: PlannedVm,
  signal: AbortSignal
): Promise<Chosen> {
  const id = { vm: vm.uuid, name: vm.name }
  if (vm.method !== 'stream') {
    try {
      const req = await findNativeRoute(ctx, vm, signal)
      ctx.emit({ kind: 'vm-method', ...id, method: 'native' })
      return { method: 'native', req }
    } catch (error) {
      if (signal.aborted || vm.method === 'native') throw error
      const reason = `native migration impossible: ${describeError(error)}`
      if (
        (vm.powerState === 'Running' || vm.powerState === 'Paused') &&
        ctx.options.running === 'skip'
      ) {
        return { skip: `${reason}; a stream copy needs it halted (--running skip)` }
      }
      ctx.emit({ kind: 'vm-method', ...id, method: 'stream', reason })
      return { method: 'stream' }
    }
  }
  ctx.emit({ kind: 'vm-method', ...id, method: 'stream' })
  return { method: 'stream' }
}

// Errors of one destination host that another host of the pool may not have.
const HOST_SPECIFIC = new Set([
  'HOST_NOT_ENOUGH_FREE_MEMORY',
  'HOST_DISABLED',
  'HOST_OFFLINE',
  'HOST_NOT_LIVE',
  'VM_INCOMPATIBLE_WITH_THIS_HOST',
  'HOST_CANNOT_ATTACH_NETWORK',
])

/**
 * `host.migrate_receive` + `VM.assert_can_migrate` on the destination hosts in turn, until one
 * passes (another host may have the memory this one lacks); throws the last reason.
 */
async function findNativeRoute(
  ctx: MigrateContext,
  vm: PlannedVm,
  signal: AbortSignal
): Promise<NativeRequest> {
  const id = { vm: vm.uuid, name: vm.name }
  let lastError: unknown
  for (const host of candidateHosts(ctx.destInventory, ctx.slots)) {
    let req: NativeRequest | undefined
    try {
      req = await prepareNative(ctx.dest, ctx.destInventory, vm, ctx.plan.sr.ref, host, signal)
      const prepared = req
      await retryStorageMigrates(() => assertNative(ctx.source, vm.ref, prepared, signal), {
        signal,
        onRetry: ({ reason, delayMs }) => ctx.emit({ kind: 'vm-retry', ...id, reason, delayMs }),
      })
      return req
    } catch (error) {
      // A route not taken: its destination session goes now.
      if (req !== undefined) await releaseNative(ctx.dest, req)
      lastError = error
      if (signal.aborted || !HOST_SPECIFIC.has(xapiCode(error) ?? '')) throw error
    }
  }
  throw lastError
}
