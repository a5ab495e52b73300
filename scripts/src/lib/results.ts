import { EXIT_CODES, type ExitCode } from './exit-codes.js'

/** Outcome of one item (a VM, a file…) of a bulk operation. */
export type ItemStatus = 'ok' | 'skipped' | 'failed'

/**
 * The per-item result every script reports (issue 5 and 6): `vm` is the VM's uuid, `name` its
 * name_label. Scripts add their own fields (`action`, `file`, `bytes`, `sha256`, `newVm`…).
 */
export type ItemResult = {
  readonly vm?: string
  readonly name?: string
  readonly status: ItemStatus
  /** What was done to the item, e.g. `clean_shutdown`; `none` when nothing was done. */
  readonly action?: string
  /** One-line reason of a failure (or of a skip), e.g. `VM_BAD_POWER_STATE(…)`. */
  readonly error?: string
  /**
   * The failure's stable code, to branch on without parsing `error`: xapi's
   * (`VM_BAD_POWER_STATE`), the client's (`XAPI_CLIENT_STALLED`), the system's (`ENOSPC`), ours
   * (`XVA_VERIFICATION_FAILED`), or `INTERRUPTED` (see {@link failureCode}).
   */
  readonly errorCode?: string
  readonly [field: string]: unknown
}

/** Counts over a list of results, the head of the final `{"summary":…}` line. */
export type ResultCounts = {
  readonly total: number
  readonly ok: number
  readonly skipped: number
  readonly failed: number
}

/** Counts results by status. */
export function countResults(results: readonly ItemResult[]): ResultCounts {
  let ok = 0
  let skipped = 0
  let failed = 0
  for (const { status } of results) {
    if (status === 'ok') ok++
    else if (status === 'skipped') skipped++
    else failed++
  }
  return { total: results.length, ok, skipped, failed }
}

/**
 * The exit code of a finished run: 130 if it was interrupted, 1 if any item failed, else 0.
 * Setup errors (exit 2) never get here: they are thrown before anything changes.
 */
export function exitCodeOf(
  results: readonly ItemResult[],
  interrupted = false,
  runFailed = false
): ExitCode {
  if (interrupted) return EXIT_CODES.INTERRUPTED
  if (runFailed) return EXIT_CODES.ITEM_FAILED
  return results.some((r) => r.status === 'failed') ? EXIT_CODES.ITEM_FAILED : EXIT_CODES.OK
}

/** What a command's `run` returns: every item's result, plus script-specific summary fields. */
export type RunReport = {
  readonly results: readonly ItemResult[]
  /** Extra summary fields (`host`, `dryRun`, `deadlineReached`…), merged after the counts. */
  readonly summary?: Readonly<Record<string, unknown>>
  /** The run was cut short by SIGINT/SIGTERM (exit 130). */
  readonly interrupted?: boolean
  /**
   * Something beyond the items failed once work had begun (vm-migrate's journal could not be
   * written): the summary's `error`, and exit 1 even when every item went well.
   */
  readonly error?: string
}

/**
 * Collects results keyed by item so that the last word about an item wins (a VM first
 * `failed` by a clean shutdown and then `ok` by the hard fallback is reported once), in the
 * order items were first seen.
 */
export class ResultCollector {
  readonly #results = new Map<string, ItemResult>()

  /** Records (or replaces) the result of the item `key` (usually the VM uuid). */
  set(key: string, result: ItemResult): void {
    this.#results.set(key, result)
  }

  get(key: string): ItemResult | undefined {
    return this.#results.get(key)
  }

  has(key: string): boolean {
    return this.#results.has(key)
  }

  /** The results in first-seen order. */
  list(): ItemResult[] {
    return [...this.#results.values()]
  }
}

/**
 * `{ errorCode }` for a failed item's result: `INTERRUPTED` when the run was interrupted, else the
 * error's own `code` (nothing when it has none).
 */
export function failureCode(error: unknown, interrupted = false): { errorCode?: string } {
  if (interrupted) return { errorCode: 'INTERRUPTED' }
  const code = (error as { code?: unknown } | null | undefined)?.code
  return typeof code === 'string' && code !== '' ? { errorCode: code } : {}
}
