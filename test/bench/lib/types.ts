/** One measured figure, with the baseline measured in the same run. */
export type Figure = {
  /** What is measured, e.g. `VM.get_all_records, 5,000 VMs (JSON-RPC)`. */
  name: string
  value: number
  unit: string
  baseline?: { name: string; value: number }
  /**
   * `higher` when a bigger value is better (throughput), `lower` otherwise (time, memory). The
   * ratio is always written so that > 1 means ours is better.
   */
  better: 'higher' | 'lower'
  /** The goal, as written in the issue, e.g. `≥ 1.0× xen-api`. */
  goal?: string
  /** Whether the goal is met; undefined when there is no goal. */
  met?: boolean
  note?: string
}

export type BenchContext = {
  quick: boolean
  tmpDir: string
  log: (line: string) => void
}

export type Bench = {
  id: string
  title: string
  issue: number
  run(ctx: BenchContext): Promise<Figure[]>
}

/** ratio > 1 means ours is better than the baseline. */
export function ratioOf(f: Figure): number | undefined {
  if (!f.baseline || f.baseline.value === 0 || f.value === 0) return undefined
  return f.better === 'higher' ? f.value / f.baseline.value : f.baseline.value / f.value
}
