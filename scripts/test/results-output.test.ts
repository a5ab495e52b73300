import { describe, expect, it } from 'vitest'
import { createOutput, formatResult, type OutputStream } from '../src/lib/output.js'
import { countResults, exitCodeOf, ResultCollector, type ItemResult } from '../src/lib/results.js'

function sink(isTTY = false): OutputStream & { text: () => string; lines: () => string[] } {
  const chunks: string[] = []
  return {
    isTTY,
    write: (chunk: string) => chunks.push(chunk),
    text: () => chunks.join(''),
    lines: () => chunks.join('').split('\n').filter(Boolean),
  }
}
const now = () => new Date('2026-01-02T03:04:05.678Z')
const results: ItemResult[] = [
  { vm: 'u1', name: 'a', status: 'ok', action: 'clean_shutdown' },
  { vm: 'u2', name: 'b', status: 'skipped', action: 'none', error: 'opted out' },
  {
    vm: 'u3',
    name: 'c',
    status: 'failed',
    action: 'hard_shutdown',
    error: 'VM_BAD_POWER_STATE(x)',
  },
]

describe('results', () => {
  it('counts and maps to exit codes', () => {
    expect(countResults(results)).toEqual({ total: 3, ok: 1, skipped: 1, failed: 1 })
    expect(exitCodeOf(results)).toBe(1)
    expect(exitCodeOf(results.slice(0, 2))).toBe(0)
    expect(exitCodeOf([])).toBe(0)
    expect(exitCodeOf(results.slice(0, 1), true)).toBe(130)
  })

  it('keeps the last result of an item in first-seen order', () => {
    const c = new ResultCollector()
    c.set('a', { status: 'failed' })
    c.set('b', { status: 'ok' })
    c.set('a', { status: 'ok', action: 'hard_shutdown' })
    expect(c.list()).toEqual([{ status: 'ok', action: 'hard_shutdown' }, { status: 'ok' }])
  })
})

describe('formatResult', () => {
  it('names the file of a result that has one, and stands for a VM without a name by it', () => {
    expect(
      formatResult({ file: '/b/web.xva', vm: 'u1', name: 'web', status: 'ok', action: 'import' })
    ).toBe('ok       import          web (u1) [web.xva]')
    expect(
      formatResult({ file: '/b/junk.xva', status: 'failed', action: 'none', error: 'empty' })
    ).toBe('failed   none            junk.xva: empty')
    expect(formatResult({ status: 'failed', error: 'x' })).toBe('failed                   ?: x')
  })
})

describe('createOutput', () => {
  it('writes NDJSON events and the summary line last with --json', () => {
    const stdout = sink()
    const stderr = sink()
    const out = createOutput({ json: true, stdout, stderr, scriptName: 's', now })
    out.emit({ kind: 'vm-start', vm: 'u1' } as { kind: string })
    out.warn('careful')
    out.report({ results, summary: { host: 'h' } }, 1)
    const lines = stdout.lines().map((l) => JSON.parse(l))
    expect(lines[0]).toEqual({ kind: 'vm-start', time: '2026-01-02T03:04:05.678Z', vm: 'u1' })
    expect(lines[1]).toMatchObject({ kind: 'warning', message: 'careful' })
    expect(lines.at(-1)).toEqual({
      summary: { total: 3, ok: 1, skipped: 1, failed: 1, host: 'h', exitCode: 1 },
      results,
    })
    expect(stderr.text()).toBe('2026-01-02T03:04:05.678Z s: warning: careful\n')
  })

  it('timestamps human lines when not on a TTY, but not on a TTY', () => {
    const plain = sink(false)
    createOutput({ json: false, stdout: plain, stderr: sink(), scriptName: 's', now }).info('hello')
    expect(plain.text()).toBe('2026-01-02T03:04:05.678Z hello\n')
    const tty = sink(true)
    createOutput({ json: false, stdout: tty, stderr: sink(), scriptName: 's', now }).info('hello')
    expect(tty.text()).toBe('hello\n')
  })

  it('renders events with the formatter, hides those it maps to undefined', () => {
    const stdout = sink(true)
    const out = createOutput<{ kind: 'a' | 'b'; n: number }>({
      json: false,
      stdout,
      stderr: sink(),
      scriptName: 's',
      format: (e) => (e.kind === 'a' ? `A ${e.n}` : undefined),
    })
    out.emit({ kind: 'a', n: 1 })
    out.emit({ kind: 'b', n: 2 })
    out.report({ results }, 1)
    expect(stdout.lines()).toEqual([
      'A 1',
      'ok       clean_shutdown  a (u1)',
      'skipped  none            b (u2): opted out',
      'failed   hard_shutdown   c (u3): VM_BAD_POWER_STATE(x)',
      's: 1 ok, 1 skipped, 1 failed (exit 1)',
    ])
  })

  it('reports a fatal error as one stderr line and, with --json, a summary without results', () => {
    const stdout = sink()
    const stderr = sink(true)
    createOutput({ json: true, stdout, stderr, scriptName: 's', now }).fatal('no XAPI URL', 2)
    expect(JSON.parse(stdout.text())).toEqual({
      summary: { total: 0, ok: 0, skipped: 0, failed: 0, exitCode: 2, error: 'no XAPI URL' },
      results: [],
    })
    expect(stderr.text()).toBe('2026-01-02T03:04:05.678Z s: no XAPI URL\n')
  })
})
