import type { Argv } from 'yargs'
import {
  addCommonOptions,
  validatePositiveSeconds,
  validateRetries,
  type CommonArgs,
} from '../lib/common-options.js'
import { addConnectionOptions, resolveConnection } from '../lib/connection-options.js'
import type { ScriptCommand } from '../lib/run-command.js'
import { connectPool } from '../ops/transfer/connect.js'
import type { ProgressDisplay } from '../ops/transfer/progress-display.js'
import { createTransferProgress, transferProgressFields } from '../ops/transfer/progress-output.js'
import { formatImportEvent, type VmImportEvent } from '../ops/vm-import/events.js'
import { dryRunResults } from '../ops/vm-import/dry-run.js'
import { collectFiles } from '../ops/vm-import/files.js'
import { importFiles } from '../ops/vm-import/run-import.js'
import { resolveSr } from '../ops/vm-import/sr.js'

/** Parsed arguments of vm-import. */
export type VmImportArgs = CommonArgs & {
  readonly _: readonly (string | number)[]
  readonly dir?: string
  readonly sr?: string
  readonly restore: boolean
  readonly force: boolean
  readonly start: boolean
  readonly verify: boolean
  readonly retries: number
  readonly 'retry-delay': number
  readonly 'progress-interval': number
} & Record<string, unknown>

/** `vm-import`: verified, concurrent XVA restore (issue 6). */
export const vmImportCommand: ScriptCommand<VmImportArgs, VmImportEvent> = {
  name: 'vm-import',
  describe:
    'Import XVA files (.xva, .xva.gz, .xva.zst), each verified locally first; a failed import leaves no VM behind',
  builder: (argv: Argv) =>
    addCommonOptions(addConnectionOptions(argv), {
      concurrency: 2,
      concurrencyHelp: 'imports at once',
    })
      .usage('$0 [files..] [options]')
      // Files are positional: the default command takes them in `_`; options stay strict.
      .strict(false)
      .strictOptions()
      .option('dir', {
        type: 'string',
        describe: 'import every .xva, .xva.gz and .xva.zst file of this directory',
      })
      .option('sr', {
        type: 'string',
        describe: "SR for the disks, by uuid or name (default: the pool's default SR)",
      })
      .option('restore', {
        type: 'boolean',
        default: false,
        describe: "full restore: keep the VM's uuid and MACs, replace an older halted VM",
      })
      .option('force', {
        type: 'boolean',
        default: false,
        describe: 'ignore checksum mismatches on the server side',
      })
      .option('start', { type: 'boolean', default: false, describe: 'start each VM once imported' })
      .option('verify', {
        type: 'boolean',
        default: true,
        describe: 'verify each archive locally before sending it (--no-verify to skip)',
      })
      .option('retries', {
        type: 'number',
        default: 0,
        describe:
          'new attempts after a broken upload (with backoff; what the failed attempt made is removed first)',
        coerce: (value: unknown) => validateRetries(value),
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
      .example('$0 /backup/*.xva.zst --sr "Shared NFS storage"', 'restore a backup')
      .example(
        '$0 --dir /backup/2026-11-27 --restore --start',
        ''
      ) as unknown as Argv<VmImportArgs>,
  format: formatImportEvent,

  async run(argv, { signal, output, env, stdin, stderr }) {
    const dryRun = argv['dry-run']
    const files = await collectFiles(
      argv._.map((f) => String(f)),
      argv.dir
    )
    const settings = await resolveConnection(argv, { env, stdin, stderr, signal })
    const client = await connectPool(settings, { readOnly: dryRun, signal })
    let display: ProgressDisplay | undefined
    try {
      const sr = await resolveSr(client, argv.sr, signal)
      output.emit({
        kind: 'plan',
        files,
        sr: sr.uuid,
        srName: sr.name,
        restore: argv.restore,
        force: argv.force,
        start: argv.start,
        verify: argv.verify,
        dryRun,
      })
      const summary = { sr: sr.uuid, srName: sr.name, dryRun }
      if (dryRun) {
        const results = await dryRunResults(files)
        return { results, summary }
      }
      const progress = createTransferProgress<VmImportEvent>({
        output,
        json: argv.json,
        intervalS: argv['progress-interval'],
        totalItems: files.length,
        transferEvent: (t) => ({
          kind: 'import-progress',
          file: t.id,
          ...transferProgressFields(t),
        }),
        format: formatImportEvent,
      })
      display = progress.display
      const emit = progress.emit
      const results = await importFiles(
        files,
        {
          client,
          sr,
          restore: argv.restore,
          force: argv.force,
          start: argv.start,
          verify: argv.verify,
          retries: argv.retries,
          retryBaseMs: argv['retry-delay'] * 1000,
          display,
          emit,
          warn: (message) => output.warn(message),
          failedImportTasks: new Set(),
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
