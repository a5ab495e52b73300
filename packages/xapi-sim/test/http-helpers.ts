import net from 'node:net'
import { startSimulator } from '../src/index.js'
import type { Simulator } from '../src/index.js'
import { login, ok, waitTask } from './rpc.js'

export type RawReply = {
  statusLine: string
  status: number
  headers: Record<string, string>
  head: string
  body: Buffer
}

/**
 * One raw HTTP exchange on its own connection: writes `head`; the body (if any) is sent once the
 * response head arrived (as xe does) unless `eager`; `end` half-closes after the body (close-delimited
 * PUT). Resolves when the server closes the connection.
 */
export function raw(
  url: string,
  head: string,
  opts: { body?: Buffer; eager?: boolean; end?: boolean } = {}
): Promise<RawReply> {
  const u = new URL(url)
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let sent = false
    const s = net.connect(Number(u.port), u.hostname, () => {
      s.write(head)
      if (opts.eager) send()
    })
    const send = () => {
      if (sent || !opts.body) return
      sent = true
      s.write(opts.body, () => {
        if (opts.end) s.end()
      })
    }
    s.on('data', (c: Buffer) => {
      chunks.push(c)
      send()
    })
    s.on('error', (e: NodeJS.ErrnoException) =>
      e.code === 'ECONNRESET' || e.code === 'EPIPE' ? undefined : reject(e)
    )
    s.on('close', () => {
      const all = Buffer.concat(chunks)
      const end = all.indexOf('\r\n\r\n')
      const headText = end < 0 ? all.toString('latin1') : all.subarray(0, end).toString('latin1')
      const [statusLine = '', ...lines] = headText.split('\r\n')
      const headers: Record<string, string> = {}
      for (const l of lines) {
        const i = l.indexOf(':')
        if (i > 0) headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim()
      }
      resolve({
        statusLine,
        status: Number(statusLine.split(' ')[1] ?? 0),
        headers,
        head: headText,
        body: end < 0 ? Buffer.alloc(0) : all.subarray(end + 4),
      })
    })
  })
}

export const get = (url: string, pathAndQuery: string, extra = ''): Promise<RawReply> =>
  raw(url, `GET ${pathAndQuery} HTTP/1.0\r\nHost: sim\r\n${extra}\r\n`)

export type Fixture = { sim: Simulator; url: string; session: string; vm(name: string): string }

export async function fixture(): Promise<Fixture> {
  const sim = await startSimulator({ seed: 'small', timeScale: 0.001 })
  const url = sim.pools[0]!.masterUrl
  const session = await login(url, sim.user, sim.password)
  return {
    sim,
    url,
    session,
    vm(name) {
      const hit = sim.db.find('VM', (r) => r.name_label === name && !r.is_a_template)
      if (!hit) throw new Error(`no VM ${name}`)
      return hit[0]
    },
  }
}

/** Waits for a task to finish and returns its record. */
export async function taskResult(f: Fixture, task: string): Promise<Record<string, any>> {
  return waitTask(f.url, f.session, task)
}

export async function newTask(f: Fixture, label = 'test'): Promise<string> {
  return ok(f.url, 'task.create', f.session, label, '')
}
