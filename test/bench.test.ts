import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { $ } from 'zx'
import { afterAll, expect, test } from 'vitest'
import { BENCHES } from './bench/cases/index.js'
import { idealMakespan } from './bench/cases/host-shutdown.js'

const dir = await mkdtemp(join(tmpdir(), 'xapi-ops-bench-test-'))
afterAll(() => rm(dir, { recursive: true, force: true }))

test('the ideal scheduler of the host-shutdown benchmark is FIFO list scheduling', () => {
  expect(idealMakespan([5, 1, 1, 1, 1, 1], 2)).toBe(5)
  expect(idealMakespan([1, 1, 1, 1], 2)).toBe(2)
  expect(idealMakespan([3, 3, 3], 8)).toBe(3)
  expect(idealMakespan([], 8)).toBe(0)
})

// Proves every benchmark runs end to end (quick mode: small inputs, once each). No timing is
// asserted: speed is measured by `npm run bench`, never by tests.
test('npm run bench -- --quick runs every benchmark and writes its report', async () => {
  const cwd = fileURLToPath(new URL('.', import.meta.url))
  const r = await $({ cwd, nothrow: true, quiet: true })`npx tsx bench/run.ts --quick --out ${dir}`
  const md = await readFile(join(dir, 'BENCHMARKS.md'), 'utf8')
  const json = JSON.parse(await readFile(join(dir, 'BENCHMARKS.json'), 'utf8')) as {
    quick: boolean
    results: { bench: string; figures: { value: number }[]; error?: string }[]
  }
  expect(json.quick).toBe(true)
  for (const bench of BENCHES) {
    const result = json.results.find((r) => r.bench === bench.id)
    expect.soft(result?.error, `${bench.id}: ${r.stderr.slice(-2000)}`).toBeUndefined()
    expect.soft(result?.figures.length, bench.id).toBeGreaterThan(0)
    expect.soft(md).toContain(`\`--only ${bench.id}\``)
  }
  expect(r.exitCode, r.stderr.slice(-2000)).toBe(0)
}, 600_000)
