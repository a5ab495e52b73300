import { EventEmitter } from 'node:events'
import { PassThrough } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { addCommonOptions } from '../src/lib/common-options.js'
import { UsageError } from '../src/lib/errors.js'
import { runCommand, type ScriptCommand } from '../src/lib/run-command.js'
import type { RunReport } from '../src/lib/results.js'

function collect() {
  const stream = new PassThrough()
  let text = ''
  stream.on('data', (chunk: Buffer) => (text += chunk.toString()))
  return Object.assign(stream, { text: () => text })
}

type Args = { concurrency: number; json: boolean; 'dry-run': boolean; mode?: string }

function command(run: ScriptCommand<Args>['run']): ScriptCommand<Args> {
  return {
    name: 'demo',
    describe: 'a demo',
    builder: (y) =>
      addCommonOptions(y, { concurrency: 2, concurrencyHelp: 'n' }).option('mode', {
        type: 'string',
      }),
    run,
  }
}

async function start(cmd: ScriptCommand<Args>, argv: string[]) {
  const stdout = collect()
  const stderr = collect()
  const signals = new EventEmitter()
  const exits: number[] = []
  const code = runCommand(cmd, {
    argv,
    env: {},
    stdout,
    stderr,
    stdin: new PassThrough(),
    signals,
    exit: (c) => void exits.push(c),
  })
  return { code, stdout, stderr, signals, exits }
}

const report = (statuses: Array<'ok' | 'skipped' | 'failed'>): RunReport => ({
  results: statuses.map((status, i) => ({ vm: `u${i}`, status })),
})

describe('runCommand', () => {
  it.each([
    [['ok', 'skipped'], 0],
    [['ok', 'failed'], 1],
    [[], 0],
  ] as const)(
    'maps results %j to exit %i and ends --json output with the summary',
    async (statuses, exit) => {
      const run = await start(
        command(async () => report([...statuses])),
        ['--json']
      )
      expect(await run.code).toBe(exit)
      const last = JSON.parse(run.stdout.text().trim().split('\n').at(-1)!)
      expect(last.summary).toMatchObject({ total: statuses.length, exitCode: exit })
      expect(last.results).toHaveLength(statuses.length)
    }
  )

  it('passes parsed options and a context to run', async () => {
    let seen: unknown
    const run = await start(
      command(async (argv, ctx) => {
        seen = { concurrency: argv.concurrency, mode: argv.mode, aborted: ctx.signal.aborted }
        return report([])
      }),
      ['--concurrency', '5', '--mode', 'x']
    )
    expect(await run.code).toBe(0)
    expect(seen).toEqual({ concurrency: 5, mode: 'x', aborted: false })
  })

  it.each([
    [['--bogus'], /Unknown argument: bogus \(see --help\)/],
    [['--concurrency', '0'], /expected --concurrency to be a positive integer, got 0/],
    [['--concurrency', 'x'], /expected --concurrency to be a positive integer, got NaN/],
  ])('exits 2 on usage error %j without running', async (argv, message) => {
    let ran = false
    const run = await start(
      command(async () => {
        ran = true
        return report([])
      }),
      argv
    )
    expect(await run.code).toBe(2)
    expect(ran).toBe(false)
    expect(run.stderr.text()).toMatch(message)
    expect(run.stderr.text()).not.toMatch(/\n\s+at /)
  })

  it('exits 2 with one line for UsageError, XAPI and connection errors thrown by run', async () => {
    const xapiError = Object.assign(new Error('SESSION_AUTHENTICATION_FAILED(root, bad)'), {
      code: 'SESSION_AUTHENTICATION_FAILED',
      params: ['root', 'Authentication failure'],
    })
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), {
      code: 'ECONNREFUSED',
    })
    for (const [error, message] of [
      [new UsageError('unknown host "x"'), 'demo: unknown host "x"\n'],
      [xapiError, 'demo: authentication failed for user root: Authentication failure\n'],
      [refused, 'demo: connect ECONNREFUSED 127.0.0.1:9\n'],
    ] as const) {
      const run = await start(
        command(async () => {
          throw error
        }),
        []
      )
      expect(await run.code).toBe(2)
      expect(run.stderr.text().replace(/^\S+Z /, '')).toBe(message)
    }
  })

  it('exits 1 and prints the stack for an unexpected error', async () => {
    const run = await start(
      command(async () => {
        throw new TypeError('boom')
      }),
      ['--json']
    )
    expect(await run.code).toBe(1)
    expect(run.stderr.text()).toMatch(/unexpected error: boom[\s\S]*\n\s+at /)
    expect(JSON.parse(run.stdout.text()).summary).toMatchObject({
      exitCode: 1,
      error: 'unexpected error: boom',
    })
  })

  it('aborts the signal on SIGTERM and exits 130; a second signal exits at once', async () => {
    let entered!: () => void
    const inRun = new Promise<void>((resolve) => (entered = resolve))
    const run = await start(
      command(async (_argv, { signal }) => {
        entered()
        await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }))
        return { ...report(['ok']), interrupted: true }
      }),
      []
    )
    await inRun
    run.signals.emit('SIGTERM', 'SIGTERM')
    expect(await run.code).toBe(130)
    expect(run.stderr.text()).toMatch(/SIGTERM received: cancelling/)
    expect(run.exits).toEqual([])
    expect(run.signals.listenerCount('SIGTERM')).toBe(0)

    let release!: () => void
    const stuck = await start(
      command(async () => {
        await new Promise<void>((resolve) => (release = resolve))
        return report([])
      }),
      []
    )
    await new Promise((resolve) => setImmediate(resolve))
    stuck.signals.emit('SIGINT', 'SIGINT')
    stuck.signals.emit('SIGINT', 'SIGINT')
    expect(stuck.exits).toEqual([130])
    release()
    expect(await stuck.code).toBe(130)
  })

  it('exits 130 when run throws after the interrupt', async () => {
    const run = await start(
      command(async (_argv, { signal }) => {
        await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }))
        signal.throwIfAborted()
        return report([])
      }),
      []
    )
    await new Promise((resolve) => setImmediate(resolve))
    run.signals.emit('SIGINT', 'SIGINT')
    expect(await run.code).toBe(130)
    expect(run.stderr.text()).toMatch(/interrupted by SIGINT/)
  })
})
