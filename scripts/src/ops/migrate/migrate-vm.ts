import { describeError } from '../../lib/errors.js'
import { failureCode, type ItemResult } from '../../lib/results.js'
import { dropTask, findCopies, removeVmAndDisks, restartSource, setOtherConfig } from './cleanup.js'
import type { MigrateEvent } from './events.js'
import type { HostSlots } from './host-slots.js'
import { stepIndex, type Journal, type JournalStep } from './journal.js'
import {
  assertNative,
  candidateHosts,
  copyNative,
  prepareNative,
  releaseNative,
  retryStorageMigrates,
  type NativeRequest,
} from './native.js'
import type { MigrationPlan, PlannedVm } from './plan.js'
import { MIGRATE_MARKER, MIGRATED_TAG_PREFIX, type PoolInventory } from './records.js'
import { copyStream, shutdownSource } from './stream.js'
import { repointVifs, verifyCopy } from './verify.js'
import { ignoring, xapiCode, type CopyProgress, type MigrateXapi } from './xapi.js'

/** Options of a migration run (from the command line). */
export type MigrateOptions = {
  readonly running: 'shutdown' | 'skip'
  /** Start the copy of a VM that was running (stream copies; live moves keep running). */
  readonly start: boolean
  /** Destroy the source VM and its disks once the copy is verified. */
  readonly deleteSource: boolean
  /** Bound of a clean shutdown before the hard fallback. */
  readonly cleanTimeoutMs: number
  /** @default 120_000 */
  readonly cleanupTimeoutMs?: number
  /** Minimum interval between two progress events of a VM. @default 2_000 */
  readonly progressIntervalMs?: number
}

/** What every VM's migration shares. */
export type MigrateContext = {
  readonly source: MigrateXapi
  readonly dest: MigrateXapi
  readonly destInventory: PoolInventory
  readonly plan: MigrationPlan
  readonly journal: Journal
  readonly slots: HostSlots
  readonly options: MigrateOptions
  readonly emit: (event: MigrateEvent) => void
  /**
   * The destination tasks of this run's stream imports and of those the journal recorded: what
   * they made is marked with them (see `removeImportedNetworks`).
   */
  readonly importTasks: Set<string>
}

/** A vm-migrate result: the common fields plus `method` and `newVm` (issue 7). */
export type MigrateResult = ItemResult & {
  readonly method?: 'native' | 'stream'
  readonly newVm?: string
}

type Chosen =
  | { readonly method: 'native'; readonly req: NativeRequest }
  | { readonly method: 'stream' }
  | { readonly skip: string }

/**
 * Migrates one VM: (resume) → copy by the chosen method → re-point VIFs (stream) → verify →
 * start → delete or tag the source, writing each step to the journal. Never throws: a failure
 * (or an abort) cancels what runs, removes a partial copy, restarts the source if we shut it
 * down, and is returned as a `failed` result.
 */
export async function migrateVm(
  ctx: MigrateContext,
  vm: PlannedVm,
  signal: AbortSignal
): Promise<MigrateResult> {
  const { journal, source, dest, emit } = ctx
  const id = { vm: vm.uuid, name: vm.name }
  const resume = vm.resume
  const state = {
    method: resume?.method,
    newVmRef: resume?.newVmRef,
    newVm: resume?.newVm,
    taskRef: undefined as string | undefined,
    shutDownByUs: resume?.shutDownByUs ?? false,
    sourceGone: vm.sourceGone || resume?.sourceGone === true,
    verified: false,
  }
  const record = (step: JournalStep, extra: object = {}) => {
    emit({ kind: 'vm-step', ...id, step, newVm: state.newVm })
    return journal.update(vm.uuid, { step, ...extra })
  }
  emit({
    kind: 'vm-start',
    ...id,
    method: vm.method,
    resume: resume ? `${resume.step} (${resume.status})` : undefined,
  })
  try {
    await journal.update(vm.uuid, {
      name: vm.name,
      status: 'in_progress',
      wasRunning: vm.wasRunning,
      expect: vm.expect,
      ...(resume === undefined && { step: 'planned' as const }),
    })

    let haveCopy = false
    if (state.sourceGone && state.newVmRef === undefined) {
      // The source moved while no run was watching (killed during a live migration that went
      // on): its copy carries the marker.
      const copies = await findCopies(dest, vm.uuid, signal)
      if (copies.length === 1) {
        state.newVmRef = copies[0]!.ref
        state.newVm = copies[0]!.uuid
        state.method ??= 'native'
        await record('copied', { newVmRef: state.newVmRef, newVm: state.newVm, sourceGone: true })
        haveCopy = true
      }
    }
    if (resume && stepIndex(resume.step) >= stepIndex('copied') && state.newVmRef && !haveCopy) {
      haveCopy =
        (await ignoring(['HANDLE_INVALID'], () =>
          dest.call<string>('VM.get_uuid', [state.newVmRef], { signal })
        )) !== undefined
      state.verified = haveCopy && stepIndex(resume.step) >= stepIndex('verified')
    }
    if (!haveCopy) {
      if (state.sourceGone) {
        throw new Error('the source VM is gone and its copy is not in the destination pool')
      }
      state.newVmRef = undefined
      state.newVm = undefined
      await clearLeftovers(ctx, vm, resume?.taskRef, signal)
      const chosen = await chooseMethod(ctx, vm, signal)
      if ('skip' in chosen) {
        await journal.update(vm.uuid, { status: 'skipped', error: chosen.skip })
        emit({ kind: 'vm-done', ...id, status: 'skipped', error: chosen.skip })
        return { ...id, status: 'skipped', action: 'none', error: chosen.skip }
      }
      state.method = chosen.method
      let newRef: string
      try {
        // The copy carries this key (migrate_send and XVA keep other_config): after a crash a
        // half-made copy is found on the destination by it.
        await setOtherConfig(source, vm.ref, MIGRATE_MARKER, vm.uuid, signal)
        await record('copying', { method: chosen.method })
        if (chosen.method === 'native') {
          newRef = await copyNative(source, vm, chosen.req, {
            slots: ctx.slots,
            signal,
            onTask: async (taskRef) => {
              state.taskRef = taskRef
              await journal.update(vm.uuid, { taskRef })
            },
            onRetry: ({ reason, delayMs }) => emit({ kind: 'vm-retry', ...id, reason, delayMs }),
          })
          if (chosen.req.live) state.sourceGone = true
        } else {
          if (vm.powerState === 'Running' || vm.powerState === 'Paused') {
            // Journal first: after a crash mid-shutdown the rerun must know the VM was running.
            state.shutDownByUs = true
            await journal.update(vm.uuid, { shutDownByUs: true, wasRunning: true })
            await shutdownSource(source, vm.ref, {
              cleanTimeoutMs: ctx.options.cleanTimeoutMs,
              signal,
              onAction: (action) => emit({ kind: 'vm-shutdown', ...id, action }),
            })
          }
          newRef = await copyStream(source, dest, vm, ctx.plan.sr.ref, {
            signal,
            onTask: async (taskRef) => {
              state.taskRef = taskRef
              await journal.update(vm.uuid, { taskRef })
            },
            onImportTask: async (taskRef) => {
              ctx.importTasks.add(taskRef)
              const importTasks = [...(journal.get(vm.uuid)?.importTasks ?? []), taskRef]
              await journal.update(vm.uuid, { importTasks })
            },
            onProgress: throttledProgress(ctx, id),
          })
        }
      } finally {
        // The destination session host.migrate_receive made: xapi leaves it open.
        if (chosen.method === 'native') await releaseNative(dest, chosen.req)
      }
      state.newVmRef = newRef
      state.newVm = await dest.call<string>('VM.get_uuid', [newRef], { signal })
      state.taskRef = undefined
      await setOtherConfig(dest, newRef, MIGRATE_MARKER, vm.uuid, signal)
      await record('copied', {
        newVmRef: newRef,
        newVm: state.newVm,
        sourceGone: state.sourceGone,
        taskRef: undefined,
      })
    }
    const newRef = state.newVmRef!
    if (!state.verified) {
      if (state.method === 'stream') {
        await repointVifs(dest, newRef, vm.expect, signal)
      }
      await verifyCopy(dest, newRef, vm.expect, signal)
      state.verified = true
      await record('verified')
    }
  } catch (error) {
    const message = signal.aborted ? `interrupted: ${describeError(error)}` : describeError(error)
    await cleanupAfterFailure(ctx, vm, state)
    await noteFailure(ctx, vm.uuid, message)
    const code = failureCode(error, signal.aborted)
    emit({
      kind: 'vm-done',
      ...id,
      status: 'failed',
      method: state.method,
      error: message,
      ...code,
    })
    return {
      ...id,
      status: 'failed',
      action: 'none',
      method: state.method,
      error: message,
      ...code,
    }
  }

  // The copy is verified: from here on it is never removed, whatever fails.
  const newRef = state.newVmRef!
  const result = { ...id, method: state.method, newVm: state.newVm }
  try {
    let started = false
    if (ctx.options.start && vm.wasRunning) {
      const power = await dest.call<string>('VM.get_power_state', [newRef], { signal })
      if (power === 'Halted') {
        await dest.callAsync('VM.start', [newRef, false, false], { signal })
        started = true
      }
      if (started || power === 'Running') await record('started')
    }
    let sourceDeleted = false
    if (!state.sourceGone && vm.ref !== '') {
      if (ctx.options.deleteSource) {
        await removeVmAndDisks(source, vm.ref, signal)
        sourceDeleted = true
        state.sourceGone = true
        await record('source_deleted', { sourceGone: true })
      } else {
        await ignoring(['HANDLE_INVALID'], () =>
          source.call(
            'VM.add_tags',
            [vm.ref, `${MIGRATED_TAG_PREFIX}${ctx.plan.destination.name}/${state.newVm}`],
            { signal }
          )
        )
        // The marker was for the copy; the tag now says where the source went.
        await ignoring(['HANDLE_INVALID'], () =>
          source.call('VM.remove_from_other_config', [vm.ref, MIGRATE_MARKER], { signal })
        )
      }
    }
    await journal.update(vm.uuid, { status: 'done' })
    emit({ kind: 'vm-done', ...id, status: 'ok', method: state.method, newVm: state.newVm })
    return {
      ...result,
      status: 'ok',
      action: 'migrated',
      started,
      sourceDeleted,
      sourceKept: !state.sourceGone,
    }
  } catch (error) {
    const message = `${signal.aborted ? 'interrupted' : 'failed'} after verification: ${describeError(error)} (the copy is kept; a rerun with the same --journal finishes)`
    await noteFailure(ctx, vm.uuid, message)
    const code = failureCode(error, signal.aborted)
    emit({ kind: 'vm-done', ...id, status: 'failed', ...result, error: message, ...code })
    return { ...result, status: 'failed', action: 'migrated', error: message, ...code }
  }
}

/** Records a failure in the journal; a journal that cannot be written is reported, not thrown. */
async function noteFailure(ctx: MigrateContext, uuid: string, message: string): Promise<void> {
  try {
    await ctx.journal.update(uuid, { status: 'failed', error: message })
  } catch (error) {
    ctx.emit({
      kind: 'vm-cleanup',
      vm: uuid,
      name: ctx.journal.get(uuid)?.name ?? '',
      action: 'journal',
      error: describeError(error),
    })
  }
}

/** Resolves `auto` (native where `assert_can_migrate` passes, else stream) and `--running skip`. */
async function chooseMethod(
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

/** Before a (re)copy: cancels the task a crashed run left, removes copies it left half-made. */
async function clearLeftovers(
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
    ctx.emit({ kind: 'vm-cleanup', ...id, action: `removing partial copy ${copy.uuid}` })
    await removeVmAndDisks(ctx.dest, copy.ref, signal)
  }
}

/**
 * After a failure before verification: cancel the copy's task, remove what it made on the
 * destination (unless the source is gone: then the copy is all there is, and is kept), restart
 * the source if we shut it down. Runs on its own deadline, also after an interrupt.
 */
async function cleanupAfterFailure(
  ctx: MigrateContext,
  vm: PlannedVm,
  state: {
    taskRef?: string
    newVmRef?: string
    newVm?: string
    shutDownByUs: boolean
    sourceGone: boolean
  }
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
    copies = await findCopies(ctx.dest, vm.uuid, signal)
  })
  if (state.newVmRef !== undefined && !copies.some((c) => c.ref === state.newVmRef)) {
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
    })
  }
}

function throttledProgress(
  ctx: MigrateContext,
  id: { vm: string; name: string }
): (progress: CopyProgress) => void {
  const interval = ctx.options.progressIntervalMs ?? 2_000
  let last = 0
  return (p) => {
    const now = Date.now()
    if (now - last < interval && p.fraction !== 1) return
    last = now
    ctx.emit({
      kind: 'vm-progress',
      ...id,
      bytes: p.bytes,
      fraction: p.fraction,
      rateBytesPerSec: p.rateBytesPerSec,
    })
  }
}
