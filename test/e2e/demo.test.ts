import { spawn } from 'node:child_process'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, test as base } from 'vitest'
import { $ } from 'zx'
import { REPO_ROOT } from './helpers.js'

// `npm run demo` is the first thing a new user runs: it must finish, write verifiable files, and
// stop cleanly on Ctrl-C (SIGINT to the whole process group, as a terminal sends it).

const test = base.extend<{ dir: string }>({
  // eslint-disable-next-line no-empty-pattern
  dir: async ({}, use) => {
    const dir = await mkdtemp(join(tmpdir(), 'demo-'))
    await use(dir)
    await rm(dir, { recursive: true, force: true })
  },
})

type Run = { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

/** Starts the demo in its own process group; `onOutput` sees stdout as it grows. */
function startDemo(dir: string, onOutput: (stdout: string, pid: number) => void = () => {}) {
  // As a user types it: npm, then the tsx CLI, then node (each relays signals its own way).
  const child = spawn('npm', ['run', '--silent', 'demo'], {
    cwd: REPO_ROOT,
    env: { ...process.env, XAPI_OPS_DEMO_OUT: dir },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (c: string) => {
    stdout += c
    onOutput(stdout, child.pid!)
  })
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c))
  const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), 90_000)
  return new Promise<Run>((resolveRun, reject) => {
    child.on('error', reject)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolveRun({ code, signal, stdout, stderr })
    })
  })
}

const describeRun = (r: Run) =>
  `exit ${r.code} ${r.signal}\nstdout:\n${r.stdout.slice(-4000)}\nstderr:\n${r.stderr.slice(-2000)}`

describe('npm run demo', () => {
  test(
    'runs the three jobs and writes files that sha256sum -c accepts',
    { timeout: 120_000 },
    async ({ dir }) => {
      const run = await startDemo(dir)
      expect(run.code, describeRun(run)).toBe(0)
      expect(run.stdout).toContain('vm-migrate: 3 ok, 0 skipped, 0 failed (exit 0)')
      expect(run.stdout).toMatch(/vm-export: \d+ ok, 0 skipped, 0 failed \(exit 0\)/)
      expect(run.stdout).toMatch(/host-shutdown: \d+ ok, \d+ skipped, 0 failed \(exit 0\)/)
      expect(run.stdout).toContain('Done.')
      const files = await readdir(dir)
      expect(files).toContain('manifest.json')
      expect(files.filter((f) => f.endsWith('.part'))).toEqual([])
      const exported = files.filter((f) => f.endsWith('.xva.zst'))
      expect(exported.length).toBeGreaterThan(0)
      const check = await $({ cwd: dir, nothrow: true, quiet: true })`sha256sum -c SHA256SUMS`
      expect(check.exitCode, check.stdout + check.stderr).toBe(0)
      expect(check.stdout.trim().split('\n').sort()).toEqual(exported.map((f) => `${f}: OK`).sort())
    }
  )

  test(
    'Ctrl-C during the export: the script cleans up, the demo exits 130',
    { timeout: 120_000 },
    async ({ dir }) => {
      let sent = false
      const run = await startDemo(dir, (stdout, pid) => {
        const step2 = stdout.indexOf('2/3')
        if (sent || step2 < 0 || !/exporting/.test(stdout.slice(step2))) return
        sent = true
        process.kill(-pid, 'SIGINT')
      })
      expect(sent, describeRun(run)).toBe(true)
      // npm re-raises the signal its script ended by, so a shell says 130 either way.
      expect(run.code === 130 || run.signal === 'SIGINT', describeRun(run)).toBe(true)
      expect(run.stdout).toMatch(/vm-export: .*interrupted \(exit 130\)/)
      expect(run.stdout).toContain('Interrupted')
      expect(run.stdout).not.toContain('left behind')
      expect(run.stdout).not.toContain('3/3')
      expect(run.stderr).not.toMatch(/Error|at .*demo\.ts/)
      expect((await readdir(dir)).filter((f) => f.endsWith('.part'))).toEqual([])
    }
  )
})
