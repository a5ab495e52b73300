import { stat } from 'node:fs/promises'
import { timeCommand } from './child.js'
import { rawJsonRpc } from './raw-rpc.js'

/** The manual way: a session, a task and curl, as the SDK guide shows. */
export async function curlSession(base: string, user: string, password: string) {
  const rpc = rawJsonRpc(base)
  const { result } = await rpc.call('session.login_with_password', [user, password])
  const session = result as string
  const call = async (method: string, ...params: unknown[]) =>
    (await rpc.call(method, [session, ...params])).result
  const waitTask = async (task: string) => {
    for (;;) {
      if ((await call('task.get_status', task)) !== 'pending') return
      await new Promise((r) => setTimeout(r, 20))
    }
  }
  return {
    call,
    async export(vmName: string, out: string) {
      const [vm] = (await call('VM.get_by_name_label', vmName)) as string[]
      const task = (await call('task.create', 'bench', 'curl export')) as string
      const url = `${base}/export?session_id=${session}&task_id=${task}&ref=${vm}`
      // -L: xapi answers 302 to the host that holds the disks, as an operator's curl follows.
      const r = await timeCommand('curl', ['-sS', '--fail', '-L', '-o', out, url])
      if (r.code !== 0) throw new Error(`curl export of ${vmName} failed: ${r.stderr}`)
      await waitTask(task)
      await call('task.destroy', task)
      return { ms: r.ms, bytes: (await stat(out)).size }
    },
    async import(file: string) {
      const task = (await call('task.create', 'bench', 'curl import')) as string
      const url = `${base}/import?session_id=${session}&task_id=${task}`
      // xapi does not implement 100-continue: without `Expect:` curl would wait for it.
      const r = await timeCommand('curl', [
        '-sS',
        '--fail',
        '-H',
        'Expect:',
        '-T',
        file,
        '-o',
        '/dev/null',
        url,
      ])
      if (r.code !== 0) throw new Error(`curl import of ${file} failed: ${r.stderr}`)
      await waitTask(task)
      const xml = String(await call('task.get_result', task))
      await call('task.destroy', task)
      return { ms: r.ms, vms: xml.match(/OpaqueRef:[0-9a-f-]+/g) ?? [] }
    },
    async close() {
      await call('session.logout').catch(() => {})
      rpc.close()
    },
  }
}
