import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

const CLI = fileURLToPath(new URL('../../../packages/xapi-sim/src/cli.ts', import.meta.url))

/** What the simulator CLI prints on its first stdout line. */
export type SimInfo = {
  pools: { name: string; master: string; hosts: string[] }[]
  user: string
  password: string
  fingerprint?: string
}

export type SimProcess = SimInfo & { child: ChildProcess; stop(): Promise<void> }

/**
 * Starts the simulator CLI in its own process (so that it does not share an event loop, nor a core,
 * with what is measured) and waits for its JSON line.
 */
export async function startSimProcess(args: string[]): Promise<SimProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stderr = ''
  child.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000)
  })
  const lines = createInterface({ input: child.stdout! })
  const first = await Promise.race([
    once(lines, 'line').then(([l]) => l as string),
    once(child, 'exit').then(() => {
      throw new Error(`simulator exited before listening: ${stderr}`)
    }),
  ])
  const info = JSON.parse(first) as SimInfo
  return {
    ...info,
    child,
    async stop() {
      if (child.exitCode !== null) return
      child.kill('SIGTERM')
      await once(child, 'exit')
    },
  }
}
