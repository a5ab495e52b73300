/**
 * Helpers for end-to-end tests that spawn our scripts (`scripts/<name>.ts`) as an operator would:
 * a separate Node process running tsx, the password in the environment, NDJSON on stdout.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The repository root. */
export const REPO_ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..')

/** One parsed line of a script's `--json` output. */
export type NdjsonLine = Record<string, unknown>

/** The outcome of a script run. */
export type ScriptResult = {
  /** Exit code (null if killed by a signal the script did not handle). */
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
  /** Every stdout line that parsed as a JSON object, in order. */
  readonly lines: readonly NdjsonLine[]
  /** Lines with a `kind` (events), in order. */
  readonly events: ReadonlyArray<NdjsonLine & { kind: string }>
  /** The `summary` of the last line, if it is the summary line. */
  readonly summary: Record<string, unknown> | undefined
  /** The `results` of the summary line ([] without one). */
  readonly results: ReadonlyArray<Record<string, unknown>>
}

/** Options of {@link spawnScript}. */
export type SpawnScriptOptions = {
  /**
   * Added to a clean environment: the parent's `XAPI_*` variables are removed, and the dom0
   * socket and inventory point nowhere unless given (`XAPI_OPS_DOM0_SOCKET`, `XAPI_OPS_INVENTORY`).
   */
  readonly env?: Readonly<Record<string, string>>
  /** Kills the script (SIGKILL) when aborted, e.g. the test context's `signal`. */
  readonly signal?: AbortSignal
  /** Kills the script (SIGKILL) after this long. @default 60_000 */
  readonly timeoutMs?: number
  /**
   * Runs this file as it is (a built script, `scripts/dist/<name>.mjs`, started by its shebang)
   * instead of `scripts/<script>.ts` through tsx.
   */
  readonly executable?: string
}

/** A running script: wait for events, send signals, await the result. */
export type RunningScript = {
  readonly child: ChildProcess
  /** Resolves with the first NDJSON line matching `predicate` (rejects if the script ends first). */
  waitForLine(predicate: (line: NdjsonLine) => boolean): Promise<NdjsonLine>
  /** Resolves when the script has exited. */
  readonly done: Promise<ScriptResult>
}

/** Parses NDJSON text: every line that is a JSON object (other lines are ignored). */
export function parseNdjson(text: string): NdjsonLine[] {
  const out: NdjsonLine[] = []
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue
    try {
      const value: unknown = JSON.parse(line)
      if (typeof value === 'object' && value !== null && !Array.isArray(value))
        out.push(value as NdjsonLine)
    } catch {
      // not JSON: a human line
    }
  }
  return out
}

/** Starts `scripts/<script>.ts` with `args` (see {@link SpawnScriptOptions}). */
export function spawnScript(
  script: string,
  args: readonly string[],
  options: SpawnScriptOptions = {}
): RunningScript {
  const env: Record<string, string> = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !key.startsWith('XAPI_')) env[key] = value
  }
  Object.assign(
    env,
    {
      XAPI_OPS_DOM0_SOCKET: '/nonexistent/xapi-ops-test',
      XAPI_OPS_INVENTORY: '/nonexistent/inventory',
    },
    options.env
  )
  const [file, argv] = options.executable
    ? [options.executable, args]
    : [
        process.execPath,
        ['--import', 'tsx', resolve(REPO_ROOT, 'scripts', `${script}.ts`), ...args],
      ]
  const child = spawn(file, argv, { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  const lines: NdjsonLine[] = []
  const waiters = new Set<{
    predicate: (l: NdjsonLine) => boolean
    resolve: (l: NdjsonLine) => void
  }>()
  let partial = ''
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk
    partial += chunk
    const complete = partial.split('\n')
    partial = complete.pop() ?? ''
    for (const line of parseNdjson(complete.join('\n'))) {
      lines.push(line)
      for (const w of waiters) {
        if (w.predicate(line)) {
          waiters.delete(w)
          w.resolve(line)
        }
      }
    }
  })
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))

  const kill = () => child.kill('SIGKILL')
  const timer = setTimeout(kill, options.timeoutMs ?? 60_000)
  options.signal?.addEventListener('abort', kill, { once: true })
  const done = new Promise<ScriptResult>((resolvePromise, reject) => {
    child.on('error', reject)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      options.signal?.removeEventListener('abort', kill)
      const all = parseNdjson(stdout)
      const last = all.at(-1)
      const summary =
        last && typeof last.summary === 'object'
          ? (last.summary as Record<string, unknown>)
          : undefined
      resolvePromise({
        code,
        signal,
        stdout,
        stderr,
        lines: all,
        events: all.filter((l): l is NdjsonLine & { kind: string } => typeof l.kind === 'string'),
        summary,
        results:
          summary && Array.isArray(last?.results)
            ? (last.results as Array<Record<string, unknown>>)
            : [],
      })
    })
  })

  return {
    child,
    done,
    waitForLine(predicate) {
      const seen = lines.find(predicate)
      if (seen) return Promise.resolve(seen)
      return new Promise((resolveLine, reject) => {
        waiters.add({ predicate, resolve: resolveLine })
        done.then(
          () =>
            reject(
              new Error(
                `script ended before the expected line\nstdout:\n${stdout}\nstderr:\n${stderr}`
              )
            ),
          reject
        )
      })
    },
  }
}

/** Runs `scripts/<script>.ts` to completion. */
export function runScript(
  script: string,
  args: readonly string[],
  options: SpawnScriptOptions = {}
): Promise<ScriptResult> {
  return spawnScript(script, args, options).done
}
