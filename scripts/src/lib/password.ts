import { readFile } from 'node:fs/promises'
import { UsageError } from './errors.js'

/** Where a password may come from, in order of precedence. */
export type PasswordSources = {
  /** `--password-file`: its first line (without the line ending) is the password. */
  readonly file?: string
  /** The password environment variable's value (`XAPI_PASSWORD`). */
  readonly envValue?: string
  /** The environment variable's name, for messages. */
  readonly envName: string
  /** Prompt on this terminal when there is no file and no variable. */
  readonly stdin: NodeJS.ReadableStream & { isTTY?: boolean }
  readonly stderr: NodeJS.WritableStream
  /** What the prompt says: `Password for root@https://pool-a: `. */
  readonly prompt: string
  /** Use `''` instead of failing when nothing is given (local root login over the dom0 socket). */
  readonly allowEmpty?: boolean
  readonly signal?: AbortSignal
}

/**
 * The password, from `--password-file`, the environment, or a prompt without echo on a TTY —
 * never from argv (visible in `ps` and shell history).
 */
export async function readPassword(sources: PasswordSources): Promise<string> {
  if (sources.file !== undefined) {
    let text: string
    try {
      text = await readFile(sources.file, { encoding: 'utf8', signal: sources.signal })
    } catch (error) {
      throw new UsageError(
        `cannot read the password file ${sources.file}: ${(error as Error).message}`,
        {
          cause: error,
        }
      )
    }
    return text.split(/\r?\n/, 1)[0] ?? ''
  }
  if (sources.envValue !== undefined) return sources.envValue
  if (sources.allowEmpty) return ''
  if (sources.stdin.isTTY === true && 'setRawMode' in sources.stdin) {
    return promptHidden(
      sources.stdin as NodeJS.ReadStream,
      sources.stderr,
      sources.prompt,
      sources.signal
    )
  }
  throw new UsageError(
    `no password: set ${sources.envName}, pass --password-file, or run on a terminal to be prompted`
  )
}

/** Reads one line from a TTY without echoing it. */
export function promptHidden(
  stdin: NodeJS.ReadStream,
  stderr: NodeJS.WritableStream,
  prompt: string,
  signal?: AbortSignal
): Promise<string> {
  signal?.throwIfAborted()
  return new Promise((resolve, reject) => {
    let value = ''
    const wasRaw = stdin.isRaw
    const done = (error: unknown, result?: string) => {
      stdin.off('data', onData)
      signal?.removeEventListener('abort', onAbort)
      stdin.setRawMode(wasRaw)
      stdin.pause()
      stderr.write('\n')
      if (error === undefined) resolve(result ?? '')
      else reject(error)
    }
    const onAbort = () => done(signal?.reason)
    const onData = (chunk: Buffer | string) => {
      for (const char of chunk.toString('utf8')) {
        if (char === '\r' || char === '\n' || char === '\u0004') return done(undefined, value)
        if (char === '\u0003') return done(new UsageError('password prompt cancelled'))
        if (char === '\u007f' || char === '\b') value = value.slice(0, -1)
        else value += char
      }
    }
    stderr.write(prompt)
    stdin.setRawMode(true)
    stdin.resume()
    stdin.on('data', onData)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}
