import { basename } from 'node:path'
import { countResults, type ItemResult, type RunReport } from './results.js'

/**
 * An event of a script's typed event stream. Each script defines its union
 * (`{ kind: 'vm-done'; vm: string; … } | …`); `kind` is the discriminant.
 */
export type OpsEvent = { readonly kind: string }

/** Renders an event as one human line, or `undefined` to show nothing in human mode. */
export type EventFormatter<E extends OpsEvent> = (event: E) => string | undefined

/** A stream the output writes to (`process.stdout`, or a test's collector). */
export type OutputStream = { write(chunk: string): unknown; readonly isTTY?: boolean }

/** Options of {@link createOutput}. */
export type OutputOptions<E extends OpsEvent> = {
  /** NDJSON on stdout (`--json`) instead of human lines. */
  readonly json: boolean
  readonly stdout: OutputStream
  readonly stderr: OutputStream
  /** Prefix of messages on stderr, e.g. `host-shutdown`. */
  readonly scriptName: string
  /** Human rendering of events; without it, events are shown as `kind key=value…`. */
  readonly format?: EventFormatter<E>
  /**
   * Whether human lines go to a terminal; when not (journald, cron, a pipe), every line gets an
   * ISO timestamp.
   * @default stdout.isTTY
   */
  readonly isTTY?: boolean
  /** @default () => new Date() */
  readonly now?: () => Date
}

/**
 * Where a script's events, messages and final report go. With `json`, stdout carries only
 * NDJSON: one object per event (`{"kind":…,"time":…,…}`) and, last, the summary line
 * `{"summary":{…},"results":[…]}`. Otherwise stdout carries human lines, timestamped when not
 * on a TTY. Warnings and errors go to stderr in both modes.
 */
export type Output<E extends OpsEvent> = {
  /** Reports an event. */
  emit(event: E): void
  /** A free-form progress line (an event of kind `log` in JSON mode). */
  info(message: string): void
  /** A warning on stderr (and an event of kind `warning` in JSON mode). */
  warn(message: string): void
  /** Writes the final summary; call once, last. */
  report(report: RunReport, exitCode: number): void
  /** Reports a fatal error (one line, no stack) and, in JSON mode, a summary line without results. */
  fatal(message: string, exitCode: number): void
}

/** Creates the {@link Output} of a script run. */
export function createOutput<E extends OpsEvent>(options: OutputOptions<E>): Output<E> {
  const { json, stdout, stderr, scriptName } = options
  const now = options.now ?? (() => new Date())
  const isTTY = options.isTTY ?? stdout.isTTY === true
  const stamp = (line: string) => (isTTY ? line : `${now().toISOString()} ${line}`)
  const writeJson = (value: unknown) => stdout.write(`${JSON.stringify(value)}\n`)
  // Multi-line messages get a timestamp per line: journald stores each line as an entry.
  const writeHuman = (stream: OutputStream, text: string) =>
    stream.write(`${text.split('\n').map(stamp).join('\n')}\n`)
  const writeEvent = (kind: string, fields: object) =>
    writeJson({ kind, time: now().toISOString(), ...fields })

  return {
    emit(event) {
      if (json) return void writeEvent(event.kind, event)
      const line = options.format ? options.format(event) : formatGeneric(event)
      if (line !== undefined) writeHuman(stdout, line)
    },
    info(message) {
      if (json) writeEvent('log', { message })
      else writeHuman(stdout, message)
    },
    warn(message) {
      if (json) writeEvent('warning', { message })
      writeHuman(stderr, `${scriptName}: warning: ${message}`)
    },
    report({ results, summary }, exitCode) {
      const fullSummary = { ...countResults(results), ...summary, exitCode }
      if (json) return void writeJson({ summary: fullSummary, results })
      for (const result of results) writeHuman(stdout, formatResult(result))
      writeHuman(stdout, formatSummary(scriptName, fullSummary))
    },
    fatal(message, exitCode) {
      if (json)
        writeJson({ summary: { ...countResults([]), exitCode, error: message }, results: [] })
      writeHuman(stderr, `${scriptName}: ${message}`)
    },
  }
}

/** `kind key=value …` for events without a formatter. */
export function formatGeneric(event: OpsEvent): string {
  const fields = Object.entries(event)
    .filter(([key, value]) => key !== 'kind' && value !== undefined)
    .map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`)
  return [event.kind, ...fields].join(' ')
}

/**
 * One human line per result: `failed   hard_shutdown  db-1 (uuid): VM_…`; a result with a
 * `file` names it (`ok       import         web (uuid) [web.xva]`).
 */
export function formatResult(result: ItemResult): string {
  const file = typeof result.file === 'string' ? basename(result.file) : undefined
  const label = result.name || result.vm || file || '?'
  const id = result.vm !== undefined && result.name ? ` (${result.vm})` : ''
  const from = file !== undefined && file !== label ? ` [${file}]` : ''
  const action = result.action ?? ''
  const reason = result.error === undefined ? '' : `: ${result.error}`
  return `${result.status.padEnd(8)} ${action.padEnd(15)} ${label}${id}${from}${reason}`
}

function formatSummary(scriptName: string, summary: Record<string, unknown>): string {
  const { ok, skipped, failed, exitCode } = summary
  const extra = summary.interrupted === true ? ', interrupted' : ''
  return `${scriptName}: ${ok} ok, ${skipped} skipped, ${failed} failed${extra} (exit ${exitCode})`
}
