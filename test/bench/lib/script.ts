import { spawn } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { DIST_DIR } from '@xapi-ops/scripts/build'

const SCRIPTS = fileURLToPath(new URL('../../../scripts/', import.meta.url))

async function vmHwmKiB(pid: number): Promise<number> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8')
    return Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0)
  } catch {
    return 0
  }
}

/** How a script is started: built (`scripts/dist/<name>.mjs`, by `npm run bench`) or through tsx. */
export type ScriptForm = 'built' | 'tsx'

/**
 * Runs one of the scripts as an operator would: the built file run by its shebang
 * (`scripts/dist/<name>.mjs`), or `node --import tsx scripts/<name>.ts`; times the whole
 * process and samples its peak RSS (VmHWM) from /proc while it runs.
 */
export async function runScript(
  name: string,
  args: string[],
  env: Record<string, string>,
  form: ScriptForm = 'built'
): Promise<{
  ms: number
  code: number | null
  stdout: string
  stderr: string
  peakRssMiB: number
}> {
  const start = performance.now()
  const [file, argv] =
    form === 'built'
      ? [`${DIST_DIR}/${name}.mjs`, args]
      : [process.execPath, ['--import', 'tsx', `${SCRIPTS}${name}.ts`, ...args]]
  const child = spawn(file, argv, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  })
  let stdout = ''
  let stderr = ''
  let peak = 0
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-8000)))
  const timer = setInterval(() => {
    void vmHwmKiB(child.pid!).then((k) => (peak = Math.max(peak, k)))
  }, 50)
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve))
  clearInterval(timer)
  return { ms: performance.now() - start, code, stdout, stderr, peakRssMiB: peak / 1024 }
}
