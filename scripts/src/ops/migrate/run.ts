import PQueue from 'p-queue'
import { describeError } from '../../lib/errors.js'
import type { RunReport } from '../../lib/results.js'
import type { MigrateEvent } from './events.js'
import { removeImportedNetworks } from '../transfer/imported-networks.js'
import { dropTask } from './cleanup.js'
import { HostSlots } from './host-slots.js'
import type { Journal } from './journal.js'
import { migrateVm, type MigrateOptions, type MigrateResult } from './migrate-vm.js'
import type { MigrationPlan } from './plan.js'
import type { PoolInventory } from './records.js'
import type { MigrateXapi } from './xapi.js'

/** The two pools of a run. */
export type MigratePools = {
  readonly source: MigrateXapi
  readonly dest: MigrateXapi
  readonly destInventory: PoolInventory
}

/**
 * Runs a plan: at most `concurrency` VMs at once (p-queue) and at most 3 storage migrations per
 * host; each VM's outcome is a result, one failure does not stop the others. On abort, queued VMs
 * are reported `skipped`, running ones are cancelled and cleaned up, and the report says
 * `interrupted`.
 */
export async function runMigrations(
  pools: MigratePools,
  plan: MigrationPlan,
  journal: Journal,
  options: MigrateOptions & { readonly concurrency: number },
  context: { readonly signal: AbortSignal; readonly emit: (event: MigrateEvent) => void }
): Promise<RunReport> {
  const { signal, emit } = context
  const ctx = {
    ...pools,
    plan,
    journal,
    options,
    slots: new HostSlots(),
    emit,
    importTasks: new Set(journal.entries().flatMap((e) => e.importTasks ?? [])),
  }
  const earlierImportTasks = [...ctx.importTasks]
  const results = new Map<string, MigrateResult>()
  for (const s of plan.skipped) {
    results.set(s.uuid, {
      vm: s.uuid,
      name: s.name,
      status: 'skipped',
      action: 'none',
      error: s.reason,
      ...(s.newVm !== undefined && { newVm: s.newVm }),
    })
  }
  const queue = new PQueue({ concurrency: options.concurrency })
  // p-queue may reject `add` on abort even once the function runs: the migrations themselves
  // are awaited separately, so that their cleanup ends before the report.
  const started: Array<Promise<void>> = []
  await Promise.all(
    plan.vms.map((vm) =>
      queue
        .add(
          () => {
            const migration = migrateVm(ctx, vm, signal).then(
              (result) => void results.set(vm.uuid, result)
            )
            started.push(migration)
            return migration
          },
          { signal }
        )
        .catch(() => {})
    )
  )
  for (let awaited = 0; awaited < started.length;) {
    const batch = started.slice(awaited)
    awaited = started.length
    await Promise.all(batch)
  }
  await removeImportedNetworks(pools.dest, ctx.importTasks, (outcome) =>
    emit({ kind: 'network-cleanup', ...outcome })
  )
  // The import tasks of a killed run stay in the destination's task list: gone with it now.
  for (const task of earlierImportTasks) {
    await dropTask(pools.dest, task, AbortSignal.timeout(60_000)).catch(() => {})
  }
  for (const vm of plan.vms) {
    if (!results.has(vm.uuid)) {
      results.set(vm.uuid, {
        vm: vm.uuid,
        name: vm.name,
        status: 'skipped',
        action: 'none',
        error: signal.aborted ? 'interrupted before it started' : 'not run',
      })
    }
  }
  // A journal that cannot be written any more (its disk full, its directory gone) must not
  // hide what was done: the report still lists every VM.
  const journalError = await journal.flush().then(
    () => undefined,
    (error: unknown) => `cannot write --journal ${journal.file}: ${describeError(error)}`
  )
  if (journalError !== undefined) emit({ kind: 'journal-error', error: journalError })
  const order = [...plan.vms.map((vm) => vm.uuid), ...plan.skipped.map((s) => s.uuid)]
  return {
    results: order.map((uuid) => results.get(uuid)!).filter(Boolean),
    summary: {
      source: plan.source.name,
      destination: plan.destination.name,
      journal: journal.file,
    },
    interrupted: signal.aborted,
    ...(journalError !== undefined && { error: journalError }),
  }
}
