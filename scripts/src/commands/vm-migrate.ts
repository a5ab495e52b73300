import { setMaxListeners } from 'node:events'
import type { Argv } from 'yargs'
import {
  addCommonOptions,
  validatePositiveSeconds,
  type CommonArgs,
} from '../lib/common-options.js'
import { closeXapi, connectXapi } from '../lib/connect.js'
import {
  addConnectionOptions,
  addSharedTlsOptions,
  resolveConnection,
} from '../lib/connection-options.js'
import { UsageError } from '../lib/errors.js'
import type { ScriptCommand } from '../lib/run-command.js'
import { addSelectorOptions, type SelectorArgs } from '../lib/selectors.js'
import { adaptClient } from '../ops/migrate/client-adapter.js'
import { formatMigrateEvent, planRows, type MigrateEvent } from '../ops/migrate/events.js'
import { Journal } from '../ops/migrate/journal.js'
import { buildPlan, type MigrateMethod } from '../ops/migrate/plan.js'
import { runMigrations } from '../ops/migrate/run.js'
import { loadInventory } from '../ops/migrate/xapi.js'

/** Parsed arguments of vm-migrate. */
export type VmMigrateArgs = CommonArgs &
  SelectorArgs & {
    readonly sr?: string
    readonly 'network-map': readonly string[]
    readonly method: MigrateMethod
    readonly running: 'shutdown' | 'skip'
    readonly start: boolean
    readonly 'delete-source': boolean
    readonly journal?: string
    readonly 'clean-timeout': number
    readonly [option: string]: unknown
  }

/** `vm-migrate`: planned, resumable batch migration between pools (issue 7). */
export const vmMigrateCommand: ScriptCommand<VmMigrateArgs, MigrateEvent> = {
  name: 'vm-migrate',
  describe:
    'Migrate VMs from one pool to another: plan first, native (migrate_send) or stream (export piped into import), verified, resumable.',
  builder: (yargs) =>
    addSelectorOptions(
      addSharedTlsOptions(
        addConnectionOptions(
          addConnectionOptions(
            addCommonOptions(yargs, { concurrency: 2, concurrencyHelp: 'VMs migrated at once' }),
            { prefix: 'from', title: 'Source pool' }
          ),
          { prefix: 'to', title: 'Destination pool' }
        )
      )
    )
      .option('sr', {
        type: 'string',
        describe:
          "destination SR (uuid or name) for every disk [default: the destination's default SR]",
      })
      .option('network-map', {
        type: 'string',
        array: true,
        default: [],
        describe: 'SRC=DST network mapping (names or uuids), repeatable [default: same name]',
      })
      .option('method', {
        choices: ['auto', 'native', 'stream'] as const,
        default: 'auto' as const,
        describe:
          'native: VM.migrate_send; stream: export piped into import; auto: native where possible',
      })
      .option('running', {
        choices: ['shutdown', 'skip'] as const,
        default: 'shutdown' as const,
        describe:
          'running VMs that must be streamed: shut down cleanly first (hard fallback), or skip',
      })
      .option('start', {
        type: 'boolean',
        default: false,
        describe: 'start the copy of a VM that was running',
      })
      .option('delete-source', {
        type: 'boolean',
        default: false,
        describe:
          'destroy the source VM and its disks once the copy is verified (else: kept halted, tagged)',
      })
      .option('journal', {
        type: 'string',
        describe: 'journal file: every step of every VM is written there; a rerun resumes',
      })
      .option('clean-timeout', {
        type: 'number',
        default: 120,
        describe: 'seconds a clean shutdown of a source may take before the hard fallback',
        coerce: (v: unknown) => validatePositiveSeconds('--clean-timeout', v),
      })
      .example(
        '$0 --from-url https://pool-a --to-url https://pool-b --tag move --dry-run',
        'show the plan for the VMs tagged "move"'
      )
      .example(
        '$0 --from-url https://pool-a --to-url https://pool-b --vm "web-*" --journal move.json --start',
        'migrate the web VMs, resumable with the same command'
      ) as unknown as Argv<VmMigrateArgs>,
  format: formatMigrateEvent,
  async run(argv, { signal, output, env, stdin, stderr }) {
    const dryRun = argv['dry-run']
    // Every call and transfer of every VM listens to the run's signal.
    setMaxListeners(0, signal)
    const from = await resolveConnection(argv, {
      prefix: 'from',
      sharedTls: true,
      env,
      stdin,
      stderr,
      signal,
    })
    const to = await resolveConnection(argv, {
      prefix: 'to',
      sharedTls: true,
      env,
      stdin,
      stderr,
      signal,
    })
    const sourceClient = await connectXapi(from, { readOnly: dryRun, signal, prefix: 'from' })
    try {
      const destClient = await connectXapi(to, { readOnly: dryRun, signal, prefix: 'to' })
      try {
        const source = adaptClient(sourceClient)
        const dest = adaptClient(destClient)
        const [sourceInventory, destInventory] = await Promise.all([
          loadInventory(source, signal),
          loadInventory(dest, signal),
        ])
        if (sourceInventory.pool.uuid === destInventory.pool.uuid) {
          throw new UsageError('--from-url and --to-url are the same pool')
        }
        const journal = await Journal.open(argv.journal, {
          source: sourceInventory.pool.uuid,
          destination: destInventory.pool.uuid,
        })
        const plan = buildPlan(
          sourceInventory,
          destInventory,
          {
            selectors: argv,
            sr: argv.sr,
            networkMap: argv['network-map'],
            method: argv.method,
            running: argv.running,
          },
          journal
        )
        output.emit({
          kind: 'plan',
          dryRun,
          source: plan.source.name,
          destination: plan.destination.name,
          sr: plan.sr.name,
          vms: planRows(plan),
          skipped: plan.skipped.map((s) => ({ vm: s.uuid, name: s.name, reason: s.reason })),
          space: plan.space,
          errors: plan.errors,
        })
        if (plan.errors.length > 0) {
          throw new UsageError(
            `the plan has ${plan.errors.length} error(s), nothing was changed: ${plan.errors.join('; ')}`
          )
        }
        if (dryRun) {
          return {
            results: [
              ...plan.vms.map((vm) => ({
                vm: vm.uuid,
                name: vm.name,
                status: 'ok' as const,
                action: 'planned',
                method: vm.method,
              })),
              ...plan.skipped.map((s) => ({
                vm: s.uuid,
                name: s.name,
                status: 'skipped' as const,
                action: 'none',
                error: s.reason,
              })),
            ],
            summary: { dryRun: true, source: plan.source.name, destination: plan.destination.name },
          }
        }
        // An unwritable journal is a usage error, before anything changes.
        await journal.flush().catch((error: unknown) => {
          throw new UsageError(
            `cannot write --journal ${argv.journal}: ${(error as Error).message}`
          )
        })
        return await runMigrations(
          { source, dest, destInventory },
          plan,
          journal,
          {
            concurrency: argv.concurrency,
            running: argv.running,
            start: argv.start,
            deleteSource: argv['delete-source'],
            cleanTimeoutMs: argv['clean-timeout'] * 1000,
          },
          { signal, emit: (event) => output.emit(event) }
        )
      } finally {
        await closeXapi(destClient)
      }
    } finally {
      await closeXapi(sourceClient)
    }
  },
}
