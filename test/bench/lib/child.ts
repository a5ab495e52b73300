import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

/** Runs a bench worker (a TS file under bench/workers) in a fresh process; returns its last JSON line. */
export async function runWorker<T>(
  worker: string,
  input: unknown,
  env: Record<string, string> = {}
): Promise<T> {
  const file = fileURLToPath(new URL(`../workers/${worker}.ts`, import.meta.url))
  const child = spawn(process.execPath, ['--import', 'tsx', file, JSON.stringify(input)], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  })
  let out = ''
  let err = ''
  child.stdout.on('data', (d: Buffer) => (out += d.toString()))
  child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)))
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve))
  const last = out.trim().split('\n').at(-1) ?? ''
  if (code !== 0) throw new Error(`worker ${worker} exited with ${code}: ${err || out}`)
  return JSON.parse(last) as T
}

/** Runs a command, returns wall time and exit code. */
export async function timeCommand(
  cmd: string,
  args: string[],
  opts: { env?: Record<string, string>; cwd?: string } = {}
): Promise<{ ms: number; code: number | null; stdout: string; stderr: string }> {
  const start = performance.now()
  const child = spawn(cmd, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...opts.env },
    cwd: opts.cwd,
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-8000)))
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve))
  return { ms: performance.now() - start, code, stdout, stderr }
}

/** Writes every dirty page back (`sync`), so that a timed run does not pay for an earlier one. */
export async function flushPageCache(): Promise<void> {
  const r = await timeCommand('sync', [])
  if (r.code !== 0) throw new Error(`sync failed: ${r.stderr}`)
}
