import type { OpsEvent, Output } from '../../lib/output.js'
import {
  createProgressDisplay,
  type ProgressDisplay,
  type TransferSnapshot,
} from './progress-display.js'

/** The batch-wide event both vm-export and vm-import emit at every tick. */
type OverallProgressEvent = {
  readonly kind: 'progress'
  readonly done: number
  readonly total: number
  readonly bytes: number
  readonly rateBytesPerSec: number
}

/**
 * Wires a batch's progress to its output: live bars on a terminal (and the script's own lines
 * printed above them), otherwise a per-transfer event and an overall `progress` event every
 * interval (plain lines, or NDJSON with `--json`).
 */
export function createTransferProgress<E extends OpsEvent>(options: {
  readonly output: Output<E>
  readonly json: boolean
  readonly intervalS: number
  readonly totalItems: number
  /** The per-transfer event of a tick (`export-progress`, `import-progress`). */
  readonly transferEvent: (transfer: TransferSnapshot) => E
  /** A human line for an event, or undefined to let the output render it. */
  readonly format: (event: E) => string | undefined
}): { display: ProgressDisplay; emit: (event: E) => void } {
  const { output } = options
  const live = !options.json && process.stderr.isTTY === true
  const sameTerminal = live && process.stdout.isTTY === true
  const display = createProgressDisplay({
    mode: live ? 'tty' : 'lines',
    totalItems: options.totalItems,
    intervalMs: options.json ? 1000 : options.intervalS * 1000,
    onTick: (o) => {
      for (const t of o.active) output.emit(options.transferEvent(t))
      const overall: OverallProgressEvent = {
        kind: 'progress',
        done: o.done,
        total: o.total,
        bytes: o.bytes,
        rateBytesPerSec: Math.round(o.rateBytesPerSec),
      }
      output.emit(overall as unknown as E)
    },
  })
  const emit = (event: E) => {
    const line = sameTerminal ? options.format(event) : undefined
    if (line === undefined || !display.log(line)) output.emit(event)
  }
  return { display, emit }
}

/** The optional fields of a per-transfer progress event, from a display snapshot. */
export function transferProgressFields(t: TransferSnapshot) {
  return {
    bytes: t.bytes,
    ...(t.fraction === undefined ? {} : { fraction: t.fraction }),
    rateBytesPerSec: Math.round(t.rateBytesPerSec),
    ...(t.etaS === undefined ? {} : { etaS: Math.round(t.etaS) }),
  }
}
