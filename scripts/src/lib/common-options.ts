import type { Argv } from 'yargs'
import { UsageError } from './errors.js'

/** The options every script shares besides the connection: `--concurrency`, `--dry-run`, `--json`. */
export type CommonArgs = {
  readonly concurrency: number
  readonly 'dry-run': boolean
  readonly json: boolean
}

/**
 * Adds `--concurrency N`, `--dry-run` and `--json`.
 *
 * @example
 * const y = addCommonOptions(yargs, { concurrency: 2, concurrencyHelp: 'exports at once' })
 */
export function addCommonOptions<T>(
  argv: Argv<T>,
  defaults: { readonly concurrency: number; readonly concurrencyHelp: string }
): Argv<T & CommonArgs> {
  return argv
    .option('concurrency', {
      type: 'number',
      default: defaults.concurrency,
      describe: defaults.concurrencyHelp,
      coerce: (value: unknown) => validatePositiveInteger('--concurrency', value),
    })
    .option('dry-run', {
      type: 'boolean',
      default: false,
      describe: 'print the plan and change nothing (read-only session)',
    })
    .option('json', {
      type: 'boolean',
      default: false,
      describe: 'NDJSON events on stdout, the last line being {"summary":…,"results":[…]}',
    }) as Argv<T & CommonArgs>
}

/** Returns `value` if it is an integer ≥ 1, else throws a {@link UsageError} naming `option`. */
export function validatePositiveInteger(option: string, value: unknown): number {
  const number = typeof value === 'string' && value.trim() !== '' ? Number(value) : value
  if (typeof number !== 'number' || !Number.isInteger(number) || number < 1) {
    throw new UsageError(`expected ${option} to be a positive integer, got ${show(value)}`)
  }
  return number
}

/** Returns `value` in seconds if it is a finite number > 0, else throws a {@link UsageError}. */
export function validatePositiveSeconds(option: string, value: unknown): number {
  const number = typeof value === 'string' && value.trim() !== '' ? Number(value) : value
  if (typeof number !== 'number' || !Number.isFinite(number) || number <= 0) {
    throw new UsageError(
      `expected ${option} to be a positive number of seconds, got ${show(value)}`
    )
  }
  return number
}

/** Returns `value` if it is an integer ≥ 0 (`--retries`), else throws a {@link UsageError}. */
export function validateRetries(value: unknown): number {
  const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) {
    throw new UsageError(`expected --retries to be a non-negative integer, got ${show(value)}`)
  }
  return n
}

function show(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value)
}
