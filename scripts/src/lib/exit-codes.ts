/**
 * The exit codes every script shares (issue 5, "Exit codes (all scripts)").
 * Match on these names, not on the numbers, in code.
 */
export const EXIT_CODES = {
  /** Nothing failed (skipped items do not count as failures). */
  OK: 0,
  /** At least one item failed; the others were processed. */
  ITEM_FAILED: 1,
  /** Usage, configuration, authentication or connection error: nothing was changed. */
  USAGE: 2,
  /** Interrupted by SIGINT/SIGTERM: in-flight tasks cancelled, sessions logged out. */
  INTERRUPTED: 130,
} as const

/** One of {@link EXIT_CODES}. */
export type ExitCode = (typeof EXIT_CODES)[keyof typeof EXIT_CODES]
