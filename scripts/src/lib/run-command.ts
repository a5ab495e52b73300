import yargs, { type Argv } from 'yargs'
import { hideBin } from 'yargs/helpers'
import { classifyError, classifyUsageError } from './classify-error.js'
import { EXIT_CODES } from './exit-codes.js'
import { createOutput, type EventFormatter, type OpsEvent, type Output } from './output.js'
import { exitCodeOf, type RunReport } from './results.js'

/** What a command's `run` gets besides its parsed arguments. */
export type CommandContext<E extends OpsEvent> = {
  /** Aborted on the first SIGINT/SIGTERM (reason: an {@link InterruptedError}). */
  readonly signal: AbortSignal
  /** Events, messages and the final report go here (NDJSON with `--json`). */
  readonly output: Output<E>
  readonly env: Readonly<Record<string, string | undefined>>
  /** For the password prompt. */
  readonly stdin: NodeJS.ReadableStream & { isTTY?: boolean }
  readonly stderr: NodeJS.WritableStream & { isTTY?: boolean }
}

/**
 * A script: its yargs options and its `run`. `run` maps arguments to the options of an
 * operation (`scripts/src/ops/*`) and returns every item's result; `runCommand` writes the report
 * and picks the exit code.
 *
 * Contract of `run`: it may throw only before it has changed anything (bad input, failed login,
 * unknown host… → exit 2). Once it has started changing things it catches per-item errors into
 * results and, when `signal` aborts, cancels what is in flight and returns with
 * `interrupted: true` (exit 130). It closes its XAPI connections itself (`try/finally`).
 */
export type ScriptCommand<A, E extends OpsEvent = OpsEvent> = {
  /** The script's name, used in `--help` and messages: `host-shutdown`. */
  readonly name: string
  readonly describe: string
  readonly builder: (argv: Argv) => Argv<A>
  /** Human rendering of events (see {@link createOutput}). */
  readonly format?: EventFormatter<E>
  readonly run: (argv: A, context: CommandContext<E>) => Promise<RunReport>
}

/** Where `runCommand` reads and writes; all default to the process's own. */
export type RunCommandOptions = {
  /** Arguments without `node` and the script path. @default hideBin(process.argv) */
  readonly argv?: readonly string[]
  readonly env?: Readonly<Record<string, string | undefined>>
  readonly stdout?: NodeJS.WritableStream & { isTTY?: boolean }
  readonly stderr?: NodeJS.WritableStream & { isTTY?: boolean }
  readonly stdin?: NodeJS.ReadableStream & { isTTY?: boolean }
  /** Emitter of `SIGINT`/`SIGTERM`. @default process */
  readonly signals?: Pick<NodeJS.EventEmitter, 'on' | 'off'>
  /** Called on a second signal, to stop at once. @default process.exit */
  readonly exit?: (code: number) => void
}

/** Reason of the run signal's abort after SIGINT/SIGTERM. */
export class InterruptedError extends Error {
  override name = 'InterruptedError'
  readonly code = 'INTERRUPTED'
  readonly signalName: string

  constructor(signalName: string) {
    super(`interrupted by ${signalName}`)
    this.signalName = signalName
  }
}

/**
 * Runs a script and resolves with its exit code (never rejects):
 * 0 nothing failed, 1 some item failed, 2 usage/configuration/authentication/connection error
 * (nothing changed), 130 interrupted. The first SIGINT/SIGTERM aborts the run's signal so
 * that in-flight tasks are cancelled and sessions logged out; a second one exits at once
 * with 130. Expected errors are printed as one line; unexpected ones with their stack.
 *
 * @example
 * // scripts/host-shutdown.ts
 * process.exit(await runCommand(hostShutdownCommand))
 */
export async function runCommand<A, E extends OpsEvent>(
  command: ScriptCommand<A, E>,
  options: RunCommandOptions = {}
): Promise<number> {
  const argv = options.argv ?? hideBin(process.argv)
  const env = options.env ?? process.env
  const stdout = options.stdout ?? process.stdout
  const stderr = options.stderr ?? process.stderr
  const stdin = options.stdin ?? process.stdin
  const signals = options.signals ?? process
  const exit = options.exit ?? ((code: number) => process.exit(code))

  const controller = new AbortController()
  const onSignal = (signalName: NodeJS.Signals) => {
    if (controller.signal.aborted) return exit(EXIT_CODES.INTERRUPTED)
    stderr.write(`${command.name}: ${signalName} received: cancelling (again to exit now)\n`)
    controller.abort(new InterruptedError(signalName))
  }
  signals.on('SIGINT', onSignal)
  signals.on('SIGTERM', onSignal)

  let output: Output<E> | undefined
  const makeOutput = (json: boolean) =>
    createOutput<E>({ json, stdout, stderr, scriptName: command.name, format: command.format })
  let report: RunReport | undefined
  let parsing = true
  try {
    const parser = yargs([...argv])
      .scriptName(command.name)
      .strict()
      .fail(false)
      .exitProcess(false)
      .version(false)
      .help()
      .wrap(Math.min(110, (stdout as { columns?: number }).columns ?? 100))
      .command({
        command: '$0',
        describe: command.describe,
        builder: (y: Argv) => command.builder(y) as Argv,
        handler: async (parsed) => {
          parsing = false
          output = makeOutput(parsed.json === true)
          controller.signal.throwIfAborted()
          report = await command.run(parsed as A, {
            signal: controller.signal,
            output,
            env,
            stdin,
            stderr,
          })
        },
      })
    await parser.parseAsync()
    if (report === undefined || output === undefined) return EXIT_CODES.OK // --help
    const interrupted = report.interrupted === true || controller.signal.aborted
    const code = exitCodeOf(report.results, interrupted, report.error !== undefined)
    const error = report.error === undefined ? {} : { error: report.error }
    output.report({ ...report, summary: { ...report.summary, interrupted, ...error } }, code)
    return code
  } catch (error) {
    // With `.fail(false)` yargs 18 throws plain `Error`s for unknown options and failed
    // validation: anything thrown before the handler runs is a usage error.
    const { exitCode, message, unexpected } = parsing
      ? classifyUsageError(error)
      : classifyError(error, controller.signal)
    output ??= makeOutput(argv.includes('--json'))
    output.fatal(message, exitCode)
    if (unexpected && error instanceof Error && error.stack) stderr.write(`${error.stack}\n`)
    return exitCode
  } finally {
    signals.off('SIGINT', onSignal)
    signals.off('SIGTERM', onSignal)
  }
}
