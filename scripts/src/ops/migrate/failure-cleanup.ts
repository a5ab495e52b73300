import { describeError } from '../../lib/errors.js'
import { dropTask, findCopies, removeVmAndDisks, restartSource } from './cleanup.js'
import type { MigrateContext } from './migrate-vm.js'
import type { PlannedVm } from './plan.js'
import { MIGRATE_MARKER, SHUTDOWN_MARKER } from './records.js'
import { ignoring } from './xapi.js'

/** Before a (re)copy: cancels the task a crashed run left, removes copies it left half-made. */
export async function clearLeftovers(
  ctx: MigrateContext,
  vm: PlannedVm,
  taskRef: string | undefined,
  signal: AbortSignal
): Promise<void> {
  const id = { vm: vm.uuid, name: vm.name }
  if (taskRef !== undefined) {
    await dropTask(ctx.source, taskRef, signal)
    await ctx.journal.update(vm.uuid, { taskRef: undefined })
  }
  for (const copy of await findCopies(ctx.dest, vm.uuid, signal)) {
    // A verified copy is adopted before this is called, and never removed here.
    if (copy.verified !== undefined) continue
    ctx.emit({ kind: 'vm-cleanup', ...id, action: `removing partial copy ${copy.uuid}` })
    await removeVmAndDisks(ctx.dest, copy.ref, signal)
  }
}

/**
 * After a failure before verification: cancel the copy's task, remove what it made on the
 * destination (unless the source is gone: then the copy is all there is, and is kept), restart
 * the source if we shut it down. A verified copy is kept, unless `discardVerified` (its start
 * failed: the source runs again instead, so the copy is out of date). Runs on its own deadline,
 * also after an interrupt.
 */
export async function cleanupAfterFailure(
  ctx: MigrateContext,
  vm: PlannedVm,
  state: {
    taskRef?: string
    newVmRef?: string
    newVm?: string
    shutDownByUs: boolean
    sourceGone: boolean
    verified: boolean
  },
  options: { readonly discardVerified?: boolean } = {}
): Promise<void> {
  const id = { vm: vm.uuid, name: vm.name }
  const signal = AbortSignal.timeout(ctx.options.cleanupTimeoutMs ?? 120_000)
  const step = async (action: string, fn: () => Promise<unknown>) => {
    try {
      await fn()
    } catch (error) {
      ctx.emit({ kind: 'vm-cleanup', ...id, action, error: describeError(error) })
    }
  }
  if (state.taskRef !== undefined) {
    const taskRef = state.taskRef
    await step('cancel task', () => dropTask(ctx.source, taskRef, signal))
  }
  let sourceExists = false
  if (vm.ref !== '') {
    await step('check source', async () => {
      sourceExists =
        (await ignoring(['HANDLE_INVALID'], () =>
          ctx.source.call<string>('VM.get_power_state', [vm.ref], { signal })
        )) !== undefined
    })
  }
  let copies: Array<{ ref: string; uuid: string }> = []
  await step('find copies', async () => {
    copies = (await findCopies(ctx.dest, vm.uuid, signal)).filter(
      (c) => c.verified === undefined || options.discardVerified === true
    )
  })
  const keep = state.verified && options.discardVerified !== true
  if (state.newVmRef !== undefined && !keep && !copies.some((c) => c.ref === state.newVmRef)) {
    copies.push({ ref: state.newVmRef, uuid: state.newVm ?? '' })
  }
  if (!sourceExists) {
    // A live move finished (or the source was removed): never destroy the only copy.
    const copy = copies[0]
    if (copy !== undefined) {
      await step('record copy', () =>
        ctx.journal.update(vm.uuid, {
          step: 'copied',
          newVmRef: copy.ref,
          newVm: copy.uuid || undefined,
          sourceGone: true,
        })
      )
    }
    return
  }
  for (const copy of copies) {
    ctx.emit({ kind: 'vm-cleanup', ...id, action: `removing copy ${copy.uuid || copy.ref}` })
    await step(`remove copy ${copy.uuid || copy.ref}`, () =>
      removeVmAndDisks(ctx.dest, copy.ref, signal)
    )
  }

  await step('journal', () =>
    ctx.journal.update(vm.uuid, {
      step: 'planned',
      newVmRef: undefined,
      newVm: undefined,
      taskRef: undefined,
    })
  )
  await step('unmark source', () =>
    ctx.source.call('VM.remove_from_other_config', [vm.ref, MIGRATE_MARKER], { signal })
  )
  if (state.shutDownByUs) {
    await step('restart source', async () => {
      if (await restartSource(ctx.source, vm.ref, signal)) {
        ctx.emit({ kind: 'vm-cleanup', ...id, action: 'source restarted' })
      }
      await ctx.journal.update(vm.uuid, { shutDownByUs: false })
      await ctx.source.call('VM.remove_from_other_config', [vm.ref, SHUTDOWN_MARKER], { signal })
    })
  }
}
