import { ratioOf, type Bench, type Figure } from './types.js'

export type BenchResult = { bench: Bench; figures: Figure[]; seconds: number; error?: string }

type Meta = {
  command: string
  date: string
  quick: boolean
  totalSeconds: number
  machine: { cpu: string; cores: number; memoryGiB: number; node: string; platform: string }
}

const fmt = (n: number) =>
  Math.abs(n) >= 100 ? n.toFixed(0) : Math.abs(n) >= 10 ? n.toFixed(1) : n.toFixed(2)

/** Renders BENCHMARKS.md: per benchmark a table of figure, baseline, ratio and goal. */
export function renderMarkdown(meta: Meta, results: BenchResult[]): string {
  const m = meta.machine
  const out = [
    '# Benchmarks',
    '',
    `Made by \`${meta.command}\` on ${meta.date.slice(0, 16).replace('T', ' ')} UTC` +
      `${meta.quick ? ' (quick mode: small inputs, one run each; not representative)' : ''}.`,
    '',
    `Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, Node ${m.node}, ${m.platform}. ` +
      `Whole run: ${meta.totalSeconds.toFixed(0)} s.`,
    '',
    'Every figure is measured side by side with its baseline in the same run, against the simulator ' +
      'running in its own process on loopback. The machine is shared and noisy: read the ratios, ' +
      'not the absolute numbers. Ratio > 1 means xapi-ops is better than the baseline.',
    '',
  ]
  for (const r of results) {
    out.push(`## ${r.bench.title} (issue #${r.bench.issue}, \`--only ${r.bench.id}\`)`, '')
    if (r.error) {
      out.push(`Failed: ${r.error}`, '')
      continue
    }
    out.push('| figure | xapi-ops | baseline | ratio | goal | met |', '|---|---|---|---|---|---|')
    for (const f of r.figures) {
      const ratio = ratioOf(f)
      const base = f.baseline ? `${fmt(f.baseline.value)} ${f.unit} (${f.baseline.name})` : '—'
      const met = f.met === undefined ? '' : f.met ? 'yes' : '**no**'
      out.push(
        `| ${f.name} | ${fmt(f.value)} ${f.unit} | ${base} | ${ratio ? `${ratio.toFixed(2)}×` : '—'} | ${f.goal ?? ''} | ${met} |`
      )
    }
    const notes = r.figures.filter((f) => f.note).map((f) => `- ${f.name}: ${f.note}`)
    if (notes.length) out.push('', ...notes)
    out.push('', `(${r.seconds.toFixed(0)} s)`, '')
  }
  return out.join('\n')
}
