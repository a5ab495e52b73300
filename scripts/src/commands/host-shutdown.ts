import {
  addCommonOptions,
  validatePositiveSeconds,
  type CommonArgs,
} from '../lib/common-options.js'
import { closeXapi, connectXapi } from '../lib/connect.js'
import { addConnectionOptions, resolveConnection } from '../lib/connection-options.js'
import { CliError } from '../lib/errors.js'
import { EXIT_CODES } from '../lib/exit-codes.js'
import { readInstallationUuid } from '../lib/inventory.js'
import type { ScriptCommand } from '../lib/run-command.js'
import type { Argv } from 'yargs'
import { formatHostShutdownEvent, type HostShutdownEvent } from '../ops/host-shutdown/events.js'
import { shutdownHost } from '../ops/host-shutdown.js'

/** Parsed arguments of host-shutdown. */
export type HostShutdownArgs = CommonArgs & {
  readonly host?: string
  readonly 'clean-timeout': number
  readonly 'hard-fallback': boolean
  readonly evacuate: boolean
  readonly 'evacuate-timeout'?: number
  readonly deadline?: number
  readonly [option: string]: unknown
}

const seconds = (option: string) => (value: unknown) =>
  value === undefined ? undefined : validatePositiveSeconds(option, value)

/** `host-shutdown`: the clean host shutdown hook (issue 5). */
export const hostShutdownCommand: ScriptCommand<HostShutdownArgs, HostShutdownEvent> = {
  name: 'host-shutdown',
  describe:
    'Shut down the VMs of a host before the host itself goes down: by order groups, clean then hard, within a deadline.',
  builder: (yargs) =>
    addConnectionOptions(
      addCommonOptions(yargs, {
        concurrency: 16,
        concurrencyHelp: 'VMs shut down at once within an order group',
      })
    )
      .option('host', {
        type: 'string',
        describe: 'host uuid or name_label (default: the only host, or INSTALLATION_UUID in dom0)',
      })
      .option('clean-timeout', {
        type: 'number',
        default: 60,
        describe: 'seconds a clean shutdown may take before it is cancelled',
        coerce: seconds('--clean-timeout'),
      })
      .option('hard-fallback', {
        type: 'boolean',
        default: true,
        describe: 'hard-shut VMs that do not shut down cleanly (--no-hard-fallback: never)',
      })
      .option('evacuate', {
        type: 'boolean',
        default: false,
        describe: 'first live-migrate what can move to the other enabled hosts (host.evacuate)',
      })
      .option('evacuate-timeout', {
        type: 'number',
        describe: 'seconds allowed to the evacuation (default: max(240, used memory at 1 Gbit/s))',
        coerce: seconds('--evacuate-timeout'),
      })
      .option('deadline', {
        type: 'number',
        describe:
          'seconds for the whole run; then pending work is cancelled and the rest hard-shut',
        coerce: seconds('--deadline'),
      })
      .example('$0 --host node-2 --deadline 600', 'shut down the VMs of node-2 within 10 minutes')
      .example(
        '$0 --host node-2 --evacuate --dry-run',
        'show what would move and what would stop'
      ) as unknown as Argv<HostShutdownArgs>,
  format: formatHostShutdownEvent,
  async run(argv, { signal, output, env, stdin, stderr }) {
    const deadlineAt = argv.deadline === undefined ? undefined : Date.now() + argv.deadline * 1000
    // Connecting counts against the deadline too: a hook must never hang the host's shutdown.
    const setupSignal =
      deadlineAt === undefined
        ? signal
        : AbortSignal.any([signal, AbortSignal.timeout(deadlineAt - Date.now())])
    const settings = await resolveConnection(argv, { env, stdin, stderr, signal: setupSignal })
    let host = argv.host
    if (host === undefined && settings.localSocket) {
      // Hook mode (dom0): the host we run on.
      host = await readInstallationUuid(env)
      if (host === undefined) output.warn('no INSTALLATION_UUID in the dom0 inventory')
    }
    const xapi = await connectXapi(settings, {
      readOnly: argv['dry-run'],
      signal: setupSignal,
    }).catch((error: unknown) => {
      if (setupSignal.aborted && !signal.aborted) {
        throw new CliError('deadline reached while connecting: nothing was changed', {
          exitCode: EXIT_CODES.USAGE,
          cause: error,
        })
      }
      throw error
    })
    try {
      return await shutdownHost(
        xapi,
        {
          host,
          cleanTimeoutMs: argv['clean-timeout'] * 1000,
          hardFallback: argv['hard-fallback'],
          evacuate: argv.evacuate,
          evacuateTimeoutMs:
            argv['evacuate-timeout'] === undefined ? undefined : argv['evacuate-timeout'] * 1000,
          deadlineAt,
          concurrency: argv.concurrency,
          dryRun: argv['dry-run'],
        },
        { signal, emit: (event) => output.emit(event) }
      )
    } finally {
      await closeXapi(xapi)
    }
  },
}
