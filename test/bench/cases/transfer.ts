import { rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { runWorker, timeCommand } from '../lib/child.js'
import { writeSeed, onePool } from '../lib/seeds.js'
import { rawJsonRpc } from '../lib/raw-rpc.js'
import { startSimProcess, type SimProcess } from '../lib/sim-process.js'
import { median } from '../lib/stats.js'
import type { Bench, Figure } from '../lib/types.js'

type WorkerResult = { bytes: number; ms: number; maxRssMiB: number }

/** A curl download of the same /export URL the client uses, with a task of its own. */
async function curlExport(sim: SimProcess, vmName: string, out: string) {
  const base = sim.pools[0]!.master
  const rpc = rawJsonRpc(base)
  try {
    const { result: session } = await rpc.call('session.login_with_password', [sim.user, sim.password])
    const { result: refs } = await rpc.call('VM.get_by_name_label', [session, vmName])
    const { result: task } = await rpc.call('task.create', [session, 'bench', 'curl export'])
    const url = `${base}/export?session_id=${session}&task_id=${task}&ref=${(refs as string[])[0]}`
    const r = await timeCommand('curl', ['-sS', '--fail', '-o', out, url])
    if (r.code !== 0) throw new Error(`curl export failed: ${r.stderr}`)
    await rpc.call('task.destroy', [session, task])
    await rpc.call('session.logout', [session])
    return { ms: r.ms, bytes: (await stat(out)).size }
  } finally {
    rpc.close()
  }
}

/** A curl -T upload of a file to /import (PUT with Content-Length), then the VM removed. */
async function curlImport(sim: SimProcess, file: string) {
  const base = sim.pools[0]!.master
  const rpc = rawJsonRpc(base)
  try {
    const { result: session } = await rpc.call('session.login_with_password', [sim.user, sim.password])
    const { result: task } = await rpc.call('task.create', [session, 'bench', 'curl import'])
    const url = `${base}/import?session_id=${session}&task_id=${task}`
    const r = await timeCommand('curl', ['-sS', '--fail', '-T', file, '-o', '/dev/null', url])
    if (r.code !== 0) throw new Error(`curl import failed: ${r.stderr}`)
    // curl returns when xapi closes the connection, i.e. when the import is done; wait for the task anyway.
    for (;;) {
      const { result: status } = await rpc.call('task.get_status', [session, task])
      if (status !== 'pending') break
      await new Promise((r) => setTimeout(r, 20))
    }
    const { result: xml } = await rpc.call('task.get_result', [session, task])
    for (const ref of String(xml).match(/OpaqueRef:[0-9a-f-]+/g) ?? [])
      await rpc.call('VM.destroy', [session, ref]).catch(() => {})
    await rpc.call('task.destroy', [session, task])
    await rpc.call('session.logout', [session])
    return { ms: r.ms }
  } finally {
    rpc.close()
  }
}

/** Issue #4: exportVm (verified in flight) vs curl, importVm vs curl -T, peak RSS vs VM size. */
export const transferBench: Bench = {
  id: 'transfer',
  title: 'Streaming export and import vs curl; peak RSS exporting a 16 GiB VM',
  issue: 4,
  async run({ quick, tmpDir, log }) {
    const xferMiB = quick ? 64 : 2048
    const smallMiB = quick ? 32 : 1024
    const hugeMiB = quick ? 256 : 16 * 1024
    const seed = await writeSeed(
      tmpDir,
      'transfer',
      onePool([
        { name: 'xfer', powerState: 'Halted', disks: [{ sizeMiB: xferMiB, allocated: 0.5 }] },
        { name: 'small', powerState: 'Halted', disks: [{ sizeMiB: smallMiB, allocated: 0.1 }] },
        { name: 'huge', powerState: 'Halted', disks: [{ sizeMiB: hugeMiB, allocated: 0.1 }] },
      ])
    )
    const sim = await startSimProcess(['--seed', seed, '--port', '0'])
    const conn = { url: sim.pools[0]!.master, user: sim.user, password: sim.password }
    const figures: Figure[] = []
    const oursFile = join(tmpDir, 'ours.xva')
    const curlFile = join(tmpDir, 'curl.xva')
    try {
      const runs = quick ? 1 : 3
      const ours: number[] = []
      const theirs: number[] = []
      let bytes = 0
      for (let i = 0; i < runs; i++) {
        const a = await runWorker<WorkerResult>('export-vm', { ...conn, vm: 'xfer', out: oursFile })
        const b = await curlExport(sim, 'xfer', curlFile)
        bytes = b.bytes
        ours.push((a.bytes / a.ms) * 1000)
        theirs.push((b.bytes / b.ms) * 1000)
        log(`export run ${i + 1}: ours ${(ours.at(-1)! / 2 ** 20).toFixed(0)} MiB/s, curl ${(theirs.at(-1)! / 2 ** 20).toFixed(0)} MiB/s`)
      }
      const exp = median(ours) / 2 ** 20
      const expCurl = median(theirs) / 2 ** 20
      figures.push({
        name: `export ${(bytes / 2 ** 20).toFixed(0)} MiB XVA, verified in flight, to a file`,
        value: exp,
        unit: 'MiB/s',
        better: 'higher',
        baseline: { name: 'curl, no verification', value: expCurl },
        goal: '≥ 0.9× curl',
        met: exp >= 0.9 * expCurl,
      })

      const imp: number[] = []
      const impCurl: number[] = []
      for (let i = 0; i < runs; i++) {
        const a = await runWorker<WorkerResult>('import-vm', { ...conn, file: curlFile })
        const b = await curlImport(sim, curlFile)
        imp.push((bytes / a.ms) * 1000)
        impCurl.push((bytes / b.ms) * 1000)
      }
      const im = median(imp) / 2 ** 20
      const imCurl = median(impCurl) / 2 ** 20
      figures.push({
        name: `import ${(bytes / 2 ** 20).toFixed(0)} MiB XVA with Content-Length`,
        value: im,
        unit: 'MiB/s',
        better: 'higher',
        baseline: { name: 'curl -T', value: imCurl },
        goal: '≥ 0.9× curl',
        met: im >= 0.9 * imCurl,
      })

      const small = await runWorker<WorkerResult>('export-vm', { ...conn, vm: 'small', out: '/dev/null' })
      const huge = await runWorker<WorkerResult>('export-vm', { ...conn, vm: 'huge', out: '/dev/null' })
      figures.push({
        name: `peak RSS exporting a ${hugeMiB / 1024} GiB VM (${(huge.bytes / 2 ** 20).toFixed(0)} MiB on the wire)`,
        value: huge.maxRssMiB,
        unit: 'MiB',
        better: 'lower',
        baseline: { name: `the same exporting a ${smallMiB / 1024} GiB VM`, value: small.maxRssMiB },
        goal: '< 150 MB and flat',
        met: huge.maxRssMiB * 2 ** 20 < 150e6 && huge.maxRssMiB < small.maxRssMiB * 1.25,
      })
    } finally {
      await sim.stop()
      await rm(oursFile, { force: true })
      await rm(curlFile, { force: true })
    }
    return figures
  },
}
