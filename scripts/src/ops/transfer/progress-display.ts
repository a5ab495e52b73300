import cliProgress from 'cli-progress'
import { formatBytes, formatDuration, formatRate } from './format.js'

/** One transfer as the display sees it at a tick. */
export type TransferSnapshot = {
  readonly id: string
  readonly label: string
  readonly bytes: number
  /** Completion in [0, 1] when known. */
  readonly fraction?: number
  readonly rateBytesPerSec: number
  readonly etaS?: number
}

/** The whole batch at a tick. */
export type OverallSnapshot = {
  readonly done: number
  readonly total: number
  readonly bytes: number
  readonly rateBytesPerSec: number
  readonly active: readonly TransferSnapshot[]
}

/** What a running transfer reports to the display. */
export type TransferHandle = {
  /** Bytes so far and, when known, the completion fraction. */
  update(bytes: number, fraction?: number): void
  /** The transfer is over (success or not). */
  finish(): void
}

/**
 * `tty`: live bars (one per transfer with bytes, rate and ETA, plus an overall bar) on `stream`;
 * `lines`: `onTick` every `intervalMs` (plain periodic lines, or NDJSON events); `none`: nothing.
 */
export type ProgressDisplayOptions = {
  readonly mode: 'tty' | 'lines' | 'none'
  /** Number of items of the batch, for the overall bar. */
  readonly totalItems: number
  /** Where bars go (`tty`). @default process.stderr */
  readonly stream?: NodeJS.WritableStream
  /** Called every `intervalMs` in `lines` mode while transfers are active. */
  readonly onTick?: (overall: OverallSnapshot) => void
  /** @default 10_000 */
  readonly intervalMs?: number
}

/** Progress of concurrent transfers, rendered live or as periodic snapshots. */
export type ProgressDisplay = {
  start(id: string, label: string): TransferHandle
  /** An item of the batch is over (whatever happened): counts toward the overall bar. */
  itemDone(): void
  /** Prints a line without breaking the bars (`tty`), else returns false: print it yourself. */
  log(line: string): boolean
  stop(): void
}

const RATE_WINDOW_MS = 5_000

type Sample = readonly [time: number, bytes: number]

class Transfer {
  readonly id: string
  readonly label: string
  readonly started = Date.now()
  bytes = 0
  fraction: number | undefined
  readonly #samples: Sample[] = [[Date.now(), 0]]

  constructor(id: string, label: string) {
    this.id = id
    this.label = label
  }

  update(bytes: number, fraction: number | undefined): void {
    this.bytes = bytes
    if (fraction !== undefined && Number.isFinite(fraction)) {
      this.fraction = Math.max(this.fraction ?? 0, Math.min(1, Math.max(0, fraction)))
    }
  }

  snapshot(now: number): TransferSnapshot {
    const samples = this.#samples
    const last = samples[samples.length - 1]
    if (!last || now - last[0] >= 250) samples.push([now, this.bytes])
    while (samples.length > 2 && now - samples[1]![0] >= RATE_WINDOW_MS) samples.shift()
    const first = samples[0]!
    const elapsed = now - first[0]
    const rate = elapsed > 0 ? ((this.bytes - first[1]) * 1000) / elapsed : 0
    const f = this.fraction
    const spent = (now - this.started) / 1000
    const etaS = f !== undefined && f > 0.001 ? (spent * (1 - f)) / f : undefined
    return {
      id: this.id,
      label: this.label,
      bytes: this.bytes,
      ...(f === undefined ? {} : { fraction: f }),
      rateBytesPerSec: Math.max(0, rate),
      ...(etaS === undefined ? {} : { etaS }),
    }
  }
}

/** Creates the display; call `stop()` once the batch is over (also on failure). */
export function createProgressDisplay(options: ProgressDisplayOptions): ProgressDisplay {
  const active = new Map<string, Transfer>()
  let done = 0
  let finishedBytes = 0
  const overall = (now: number): OverallSnapshot => {
    const snaps = [...active.values()].map((t) => t.snapshot(now))
    return {
      done,
      total: options.totalItems,
      bytes: finishedBytes + snaps.reduce((sum, s) => sum + s.bytes, 0),
      rateBytesPerSec: snaps.reduce((sum, s) => sum + s.rateBytesPerSec, 0),
      active: snaps,
    }
  }

  if (options.mode === 'tty')
    return createBars(
      options,
      active,
      overall,
      () => done++,
      (b) => (finishedBytes += b)
    )

  let timer: NodeJS.Timeout | undefined
  const tick = () => {
    if (active.size > 0) options.onTick?.(overall(Date.now()))
  }
  if (options.mode === 'lines' && options.onTick) {
    timer = setInterval(tick, options.intervalMs ?? 10_000)
    timer.unref()
  }
  return {
    start(id, label) {
      const t = new Transfer(id, label)
      active.set(id, t)
      return {
        update: (bytes, fraction) => t.update(bytes, fraction),
        finish: () => {
          if (active.delete(id)) finishedBytes += t.bytes
        },
      }
    },
    itemDone: () => void done++,
    log: () => false,
    stop: () => clearInterval(timer),
  }
}

function createBars(
  options: ProgressDisplayOptions,
  active: Map<string, Transfer>,
  overall: (now: number) => OverallSnapshot,
  countDone: () => void,
  addBytes: (bytes: number) => void
): ProgressDisplay {
  const multi = new cliProgress.MultiBar(
    {
      stream: options.stream ?? process.stderr,
      clearOnComplete: false,
      hideCursor: true,
      autopadding: true,
      fps: 5,
      barsize: 24,
      format: (opts, params, payload: { line?: string }) => {
        const width = opts.barsize ?? 24
        const filled = Math.round(params.progress * width)
        const bar = '█'.repeat(filled) + '░'.repeat(Math.max(0, width - filled))
        return `${bar} ${payload.line ?? ''}`
      },
    },
    cliProgress.Presets.shades_classic
  )
  const total = multi.create(Math.max(1, options.totalItems), 0, { line: 'overall' })
  const bars = new Map<string, cliProgress.SingleBar>()
  const refresh = () => {
    const now = Date.now()
    const o = overall(now)
    for (const s of o.active) {
      const pct = s.fraction === undefined ? '  ?%' : `${Math.floor(s.fraction * 100)}%`.padStart(4)
      const line = `${pct} ${s.label} ${formatBytes(s.bytes)} ${formatRate(s.rateBytesPerSec)} ETA ${formatDuration(s.etaS)}`
      bars.get(s.id)?.update(Math.round((s.fraction ?? 0) * 1000), { line })
    }
    const partial = o.active.reduce((sum, s) => sum + (s.fraction ?? 0), 0)
    total.update(Math.min(o.total, o.done + partial), {
      line: `overall ${o.done}/${o.total} ${formatBytes(o.bytes)} ${formatRate(o.rateBytesPerSec)}`,
    })
  }
  const timer = setInterval(refresh, 200)
  timer.unref()
  return {
    start(id, label) {
      const t = new Transfer(id, label)
      active.set(id, t)
      bars.set(id, multi.create(1000, 0, { line: label }))
      return {
        update: (bytes, fraction) => t.update(bytes, fraction),
        finish: () => {
          if (!active.delete(id)) return
          addBytes(t.bytes)
          const bar = bars.get(id)
          bars.delete(id)
          if (bar) multi.remove(bar)
          refresh()
        },
      }
    },
    itemDone() {
      countDone()
      refresh()
    },
    log(line) {
      multi.log(`${line}\n`)
      return true
    },
    stop() {
      clearInterval(timer)
      refresh()
      multi.stop()
    },
  }
}
