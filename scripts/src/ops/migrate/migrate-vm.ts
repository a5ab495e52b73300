import { describeError } from '../../lib/errors.js'
import { failureCode, type ItemResult } from '../../lib/results.js'
import { chooseMethod } from './choose-method.js'
import { findCopies, removeVmAndDisks, setOtherConfig, type FoundCopy } from './cleanup.js'
import type { MigrateEvent } from './events.js'
import { cleanupAfterFailure, clearLeftovers } from './failure-cleanup.js'
import type { HostSlots } from './host-slots.js'
import { stepIndex, type Journal, type JournalStep } from './journal.js'
import { assertNoNameClash } from './name-clash.js'
import { copyNative, releaseNative } from './native.js'
import type { MigrationPlan, PlannedVm } from './plan.js'
import {
  MIGRATE_MARKER,
  MIGRATED_TAG_PREFIX,
  SHUTDOWN_MARKER,
  VERIFIED_MARKER,
  type PoolInventory,
} from './records.js'
import { copyStream, shutdownSource } from './stream.js'
import { repointVifs, verifyCopy } from './verify.js'
import { ignoring, type CopyProgress, type MigrateXapi } from './xapi.js'

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
    shutDownByUs: resume?.shutDownByUs ?? vm.shutDownBefore,
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
      // A run that verified its copy and then failed or was killed: finish with that copy.
      const adopted = await findVerifiedCopy(ctx, vm, signal)
      if (adopted !== undefined) {
        state.newVmRef = adopted.ref
        state.newVm = adopted.uuid
        state.method = adopted.verified === 'native' ? 'native' : 'stream'
        state.verified = true
        haveCopy = true
        emit({
          kind: 'vm-cleanup',
          ...id,
          action: `adopting copy ${adopted.uuid}, verified by an earlier run`,
        })
        await record('verified', {
          newVmRef: adopted.ref,
          newVm: adopted.uuid,
          method: state.method,
        })
      }
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
      await assertNoNameClash(dest, vm, signal)
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
            // And on the VM, for a rerun without the journal.
            const at = new Date().toISOString()
            await setOtherConfig(source, vm.ref, SHUTDOWN_MARKER, at, signal)
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
      // The export carried the source's marker (the copy was never shut down by us).
      await dest.call('VM.remove_from_other_config', [newRef, SHUTDOWN_MARKER], { signal })
      if (state.method === 'stream') {
        await repointVifs(dest, newRef, vm.expect, signal)
      }
      await verifyCopy(dest, newRef, vm.expect, signal)
      await setOtherConfig(dest, newRef, VERIFIED_MARKER, `${vm.uuid}/${state.method}`, signal)
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
        try {
          await dest.callAsync('VM.start', [newRef, false, false], { signal })
        } catch (error) {
          // The VM we shut down would stay down on both sides: run the source again instead.
          if (state.shutDownByUs && !state.sourceGone && vm.ref !== '') {
            return await undoAfterFailedStart(ctx, vm, state, error, signal)
          }
          throw error
        }
        started = true
      }
      if (started || power === 'Running') await record('started')
    }
    let sourceDeleted = false
    let snapshotsDeleted = 0
    if (!state.sourceGone && vm.ref !== '') {
      if (ctx.options.deleteSource) {
        const removal = await removeVmAndDisks(source, vm.ref, signal)
        for (const disk of removal.keptDisks) {
          emit({ kind: 'vm-cleanup', ...id, action: `source disk ${disk} kept: other VMs use it` })
        }
        snapshotsDeleted = removal.snapshots
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
        // The markers were for the copy; the tag now says where the source went.
        for (const key of [MIGRATE_MARKER, SHUTDOWN_MARKER]) {
          await ignoring(['HANDLE_INVALID'], () =>
            source.call('VM.remove_from_other_config', [vm.ref, key], { signal })
          )
        }
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
      ...(snapshotsDeleted > 0 && { snapshotsDeleted }),
      sourceKept: !state.sourceGone,
    }
  } catch (error) {
    const message = `${signal.aborted ? 'interrupted' : 'failed'} after verification: ${describeError(error)} (the copy is kept; a rerun finishes the migration)`
    await noteFailure(ctx, vm.uuid, message)
    const code = failureCode(error, signal.aborted)
    emit({ kind: 'vm-done', ...id, status: 'failed', ...result, error: message, ...code })
    return { ...result, status: 'failed', action: 'migrated', error: message, ...code }
  }
}

/**
 * A copy from an earlier run that was verified ({@link VERIFIED_MARKER}) and so must not be
 * made again, nor removed. When the source runs (again) the copy is out of date: the operator
 * chooses, nothing is changed.
 */
async function findVerifiedCopy(
  ctx: MigrateContext,
  vm: PlannedVm,
  signal: AbortSignal
): Promise<FoundCopy | undefined> {
  const copy = (await findCopies(ctx.dest, vm.uuid, signal)).find((c) => c.verified !== undefined)
  if (copy === undefined || vm.ref === '') return copy
  const power = await ignoring(['HANDLE_INVALID'], () =>
    ctx.source.call<string>('VM.get_power_state', [vm.ref], { signal })
  )
  if (power === 'Running' || power === 'Paused') {
    throw Object.assign(
      new Error(
        `the destination has a copy of this VM verified by an earlier run (${copy.uuid}), but the source is ${power} again: the copy is out of date; remove it to migrate the VM again (or the source, to keep the copy)`
      ),
      { code: 'STALE_COPY' }
    )
  }
  return copy
}

/**
 * The copy was verified but would not start, and the source is halted because we shut it down:
 * rather than leave the VM down on both sides, start the source again and remove the copy (out
 * of date from then on). The VM is reported failed; a rerun copies it again.
 */
async function undoAfterFailedStart(
  ctx: MigrateContext,
  vm: PlannedVm,
  state: Parameters<typeof cleanupAfterFailure>[2] & { readonly method?: 'native' | 'stream' },
  error: unknown,
  signal: AbortSignal
): Promise<MigrateResult> {
  const id = { vm: vm.uuid, name: vm.name }
  const why = signal.aborted ? 'interrupted' : describeError(error)
  ctx.emit({
    kind: 'vm-cleanup',
    ...id,
    action: 'the copy did not start: starting the source again, removing the copy',
  })
  await cleanupAfterFailure(ctx, vm, state, { discardVerified: true })
  const message = `the copy did not start (${why}): the source was started again and the copy removed`
  await noteFailure(ctx, vm.uuid, message)
  const code = failureCode(error, signal.aborted)
  ctx.emit({
    kind: 'vm-done',
    ...id,
    status: 'failed',
    method: state.method,
    error: message,
    ...code,
  })
  return { ...id, status: 'failed', action: 'none', method: state.method, error: message, ...code }
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
