import { join, resolve } from 'node:path'
import type { Argv } from 'yargs'
import type { ScriptCommand } from '../lib/run-command.js'
import {
  addCommonOptions,
  validatePositiveSeconds,
  validateRetries,
  type CommonArgs,
} from '../lib/common-options.js'
import { addConnectionOptions, resolveConnection } from '../lib/connection-options.js'
import { UsageError } from '../lib/errors.js'
import {
  addSelectorOptions,
  assertSelection,
  selectVms,
  type SelectorArgs,
} from '../lib/selectors.js'
import { connectPool } from '../ops/transfer/connect.js'
import type { ProgressDisplay } from '../ops/transfer/progress-display.js'
import { createTransferProgress, transferProgressFields } from '../ops/transfer/progress-output.js'
import { formatExportEvent, type VmExportEvent } from '../ops/vm-export/events.js'
import { SpaceBudget } from '../ops/vm-export/free-space.js'
import { ManifestStore, MANIFEST_FILE } from '../ops/vm-export/manifest.js'
import type { Compression, CompressOn } from '../ops/vm-export/naming.js'
import { prepareOutDir } from '../ops/vm-export/out-dir.js'
import { PendingStore } from '../ops/vm-export/pending.js'
import { recoverPending } from '../ops/vm-export/recover-pending.js'
import { loadInventory, planExports, type RunningMode } from '../ops/vm-export/plan.js'
import { exportVms } from '../ops/vm-export/run-export.js'

/** Parsed arguments of vm-export. */
export type VmExportArgs = CommonArgs &
  SelectorArgs & {
    readonly out: string
    readonly compress: Compression
    readonly 'compress-on': CompressOn
    readonly 'metadata-only': boolean
    readonly running: RunningMode
    readonly retries: number
    readonly overwrite: boolean
    readonly 'clean-timeout': number
    readonly 'progress-interval': number
    readonly 'retry-delay': number
  } & Record<string, unknown>

const COMPRESSIONS = ['none', 'gzip', 'zstd'] as const
const COMPRESS_ON = ['host', 'client'] as const
const RUNNING_MODES = ['snapshot', 'offline', 'skip'] as const

/** `vm-export`: verified, concurrent, resumable XVA backups (issue 6). */
export const vmExportCommand: ScriptCommand<VmExportArgs, VmExportEvent> = {
  name: 'vm-export',
  describe:
    'Export VMs to XVA files, verified in flight, with manifest.json and SHA256SUMS; a rerun resumes a broken batch',
  builder: (argv: Argv) =>
    addSelectorOptions(
      addCommonOptions(addConnectionOptions(argv), {
        concurrency: 2,
        concurrencyHelp: 'exports at once (and never more than 2 per host)',
      })
    )
      .option('out', {
        type: 'string',
        demandOption: true,
        describe: 'directory for the XVA files, manifest.json and SHA256SUMS (created if missing)',
      })
      .option('compress', {
        choices: COMPRESSIONS,
        default: 'none' as Compression,
        describe: 'compression of the files (.xva, .xva.gz, .xva.zst)',
      })
      .option('compress-on', {
        choices: COMPRESS_ON,
        default: 'host' as CompressOn,
        describe:
          'who compresses: the host (dom0, one core of a host running VMs) or this machine (zstd only, on all its cores)',
      })
      .option('metadata-only', {
        type: 'boolean',
        default: false,
        describe: 'export ova.xml only (no disks), in any power state',
      })
      .option('running', {
        choices: RUNNING_MODES,
        default: 'snapshot' as RunningMode,
        describe:
          'running VMs: export a snapshot (destroyed afterwards), shut down and restart (offline), or skip',
      })
      .option('retries', {
        type: 'number',
        default: 2,
        describe: 'new attempts after a transport or verification failure (with backoff)',
        coerce: (value: unknown) => validateRetries(value),
      })
      .option('overwrite', {
        type: 'boolean',
        default: false,
        describe: 'export again VMs whose verified file is already in --out',
      })
      .option('clean-timeout', {
        type: 'number',
        default: 60,
        describe: 'with --running offline: seconds to wait for a clean shutdown before a hard one',
        coerce: (value: unknown) => validatePositiveSeconds('--clean-timeout', value),
      })
      .option('progress-interval', {
        type: 'number',
        default: 10,
        hidden: true,
        coerce: (value: unknown) => validatePositiveSeconds('--progress-interval', value),
      })
      .option('retry-delay', {
        type: 'number',
        default: 1,
        hidden: true,
        coerce: (value: unknown) => validatePositiveSeconds('--retry-delay', value),
      })
      .example('$0 --all --out /backup/$(date +%F) --compress zstd', 'back the whole pool up')
      .example(
        '$0 --tag nightly --exclude "test-*" --out /backup --running offline',
        ''
      ) as Argv<VmExportArgs>,
  format: formatExportEvent,

  async run(argv, { signal, output, env, stdin, stderr }) {
    const dryRun = argv['dry-run']
    const out = resolve(argv.out)
    let compression = argv.compress
    if (argv['metadata-only'] && compression !== 'none') {
      output.warn('--metadata-only exports are never compressed: --compress ignored')
      compression = 'none'
    }
    const compressOn = compression === 'none' ? 'host' : argv['compress-on']
    if (compressOn === 'client' && compression !== 'zstd') {
      throw new UsageError('--compress-on client compresses with zstd only: add --compress zstd')
    }
    const settings = await resolveConnection(argv, { env, stdin, stderr, signal })
    const client = await connectPool(settings, { readOnly: dryRun, signal })
    let display: ProgressDisplay | undefined
    try {
      let inventory = await loadInventory(client, signal)
      let selection = selectVms(Object.fromEntries(inventory.vms), argv)
      assertSelection(argv, selection)
      // After the selection: a bad --vm is reported before --out is created.
      await prepareOutDir(out, { create: !dryRun })
      // Snapshots and stopped VMs that a killed run into this directory left: undone before the
      // plan, so that it sees the VMs as they were.
      const recovered = await recoverPending(client, out, inventory.pool.uuid, {
        dryRun,
        emit: (event) => output.emit(event),
        warn: (message) => output.warn(message),
      })
      if (recovered > 0) {
        inventory = await loadInventory(client, signal)
        selection = selectVms(Object.fromEntries(inventory.vms), argv)
      }
      const items = planExports(inventory, selection.selected, {
        running: argv.running,
        compression,
        metadataOnly: argv['metadata-only'],
      })
      const poolName = inventory.pool.name_label || inventory.pool.uuid
      output.emit({
        kind: 'plan',
        pool: poolName,
        out,
        compression,
        compressOn,
        metadataOnly: argv['metadata-only'],
        dryRun,
        vms: items.map((i) => ({
          vm: i.uuid,
          name: i.name,
          power_state: i.powerState,
          action: i.action,
          host: i.hostName,
          file: i.file,
          estimateBytes: i.estimateBytes,
        })),
      })
      const summary = { pool: poolName, out, manifest: `${out}/${MANIFEST_FILE}`, dryRun }
      if (dryRun) {
        const results = items.map((i) => ({
          vm: i.uuid,
          name: i.name,
          action: i.action,
          file: join(out, i.file),
          status: 'skipped' as const,
          error: 'dry run',
        }))
        return { results, summary }
      }
      const { store, warning } = await ManifestStore.load(out)
      if (warning) output.warn(warning)
      const progress = createTransferProgress<VmExportEvent>({
        output,
        json: argv.json,
        intervalS: argv['progress-interval'],
        totalItems: items.length,
        transferEvent: (t) => ({
          kind: 'export-progress',
          vm: t.id,
          name: t.label,
          ...transferProgressFields(t),
        }),
        format: formatExportEvent,
      })
      display = progress.display
      const emit = progress.emit
      const results = await exportVms(
        items,
        {
          client,
          dir: out,
          compression,
          compressOn,
          metadataOnly: argv['metadata-only'],
          retries: argv.retries,
          retryBaseMs: argv['retry-delay'] * 1000,
          overwrite: argv.overwrite,
          cleanTimeoutMs: argv['clean-timeout'] * 1000,
          pool: { uuid: inventory.pool.uuid, name: poolName },
          manifest: store,
          pending: new PendingStore(out, inventory.pool.uuid),
          budget: new SpaceBudget(),
          display,
          emit,
          warn: (message) => output.warn(message),
        },
        { concurrency: argv.concurrency, signal }
      )
      return { results, summary, interrupted: signal.aborted }
    } finally {
      display?.stop()
      await client.close().catch(() => {})
    }
  },
}
