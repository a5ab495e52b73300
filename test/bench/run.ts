/**
 * `npm run bench [-- --quick] [-- --only id,id] [-- --out DIR]`: every benchmark named in the issues,
 * in one harness. Each figure is measured side by side with its baseline in the same run; the
 * results go to BENCHMARKS.md and BENCHMARKS.json (in --out, default the repository root).
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { cpus, totalmem, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { fileURLToPath } from 'node:url'
import { bundleScripts } from '@xapi-ops/scripts/build'
import { BENCHES } from './cases/index.js'
import { renderMarkdown, type BenchResult } from './lib/report.js'

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    out: { type: 'string' },
  },
})
const root = resolve(fileURLToPath(new URL('../..', import.meta.url)))
const outDir = resolve(values.out ?? root)
const only = values.only?.split(',').map((s) => s.trim())
const selected = BENCHES.filter((b) => !only || only.includes(b.id))
if (only && selected.length !== only.length) {
  const known = BENCHES.map((b) => b.id).join(', ')
  console.error(`unknown benchmark in --only ${values.only}; known: ${known}`)
  process.exit(2)
}

const argv = process.argv.slice(2).join(' ')
const command = `npm run bench${argv ? ` -- ${argv}` : ''}`
await mkdir(outDir, { recursive: true })
// The scripts are measured as built (`npm run build`): made now, from the sources measured.
await bundleScripts()
const tmpDir = await mkdtemp(join(tmpdir(), 'xapi-ops-bench-'))
const results: BenchResult[] = []
const started = Date.now()
let failures = 0
try {
  for (const bench of selected) {
    const t0 = Date.now()
    console.error(`\n▶ ${bench.id}: ${bench.title}${values.quick ? ' (quick)' : ''}`)
    try {
      const figures = await bench.run({
        quick: values.quick,
        tmpDir,
        log: (line) => console.error(`  ${line}`),
      })
      results.push({ bench, figures, seconds: (Date.now() - t0) / 1000 })
      for (const f of figures) console.error(`  ${f.name}: ${f.value.toFixed(2)} ${f.unit}`)
    } catch (error) {
      failures++
      const message = error instanceof Error ? error.message : String(error)
      console.error(`  FAILED: ${message}`)
      results.push({ bench, figures: [], seconds: (Date.now() - t0) / 1000, error: message })
    }
  }
} finally {
  await rm(tmpDir, { recursive: true, force: true })
}

const machine = {
  cpu: cpus()[0]?.model ?? 'unknown',
  cores: cpus().length,
  memoryGiB: Math.round(totalmem() / 2 ** 30),
  node: process.version,
  platform: `${process.platform} ${process.arch}`,
}
const meta = {
  command,
  date: new Date().toISOString(),
  quick: values.quick,
  totalSeconds: (Date.now() - started) / 1000,
  machine,
}
await writeFile(join(outDir, 'BENCHMARKS.md'), renderMarkdown(meta, results))
await writeFile(
  join(outDir, 'BENCHMARKS.json'),
  JSON.stringify({ ...meta, results: results.map((r) => ({ ...r, bench: r.bench.id })) }, null, 2) +
    '\n'
)
console.error(`\nwrote ${join(outDir, 'BENCHMARKS.md')} (${meta.totalSeconds.toFixed(0)} s)`)
process.exit(failures ? 1 : 0)
