import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { flushPageCache, runWorker } from '../lib/child.js'
import { curlSession } from '../lib/curl.js'
import { writeSeed, onePool } from '../lib/seeds.js'
import { startSimProcess } from '../lib/sim-process.js'
import { median } from '../lib/stats.js'
import type { Bench, Figure } from '../lib/types.js'

type WorkerResult = { bytes: number; ms: number; maxRssMiB: number }

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
    const curl = await curlSession(conn.url, sim.user, sim.password)
    const figures: Figure[] = []
    const oursFile = join(tmpDir, 'ours.xva')
    const curlFile = join(tmpDir, 'curl.xva')
    try {
      // Fresh files each run (truncating a cached 1 GiB file costs the writer a variable amount
      // of kernel time), and the order alternates so that neither side always runs on the
      // page cache the other just filled.
      const runs = quick ? 1 : 9
      const ours: number[] = []
      const theirs: number[] = []
      let bytes = 0
      for (let i = 0; i < runs; i++) {
        await rm(oursFile, { force: true })
        await rm(curlFile, { force: true })
        // Each side starts with no dirty pages: otherwise the second one pays for the writeback
        // of what the first one just wrote.
        const runOurs = async () => {
          await flushPageCache()
          return runWorker<WorkerResult>('export-vm', { ...conn, vm: 'xfer', out: oursFile })
        }
        const runCurl = async () => {
          await flushPageCache()
          return curl.export('xfer', curlFile)
        }
        const [a, b] = await alternate(i, runOurs, runCurl)
        bytes = b.bytes
        ours.push((a.bytes / a.ms) * 1000)
        theirs.push((b.bytes / b.ms) * 1000)
        log(
          `export run ${i + 1}: ours ${(ours.at(-1)! / 2 ** 20).toFixed(0)} MiB/s, curl ${(theirs.at(-1)! / 2 ** 20).toFixed(0)} MiB/s`
        )
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
        const runOurs = () => runWorker<WorkerResult>('import-vm', { ...conn, file: curlFile })
        const runCurl = async () => {
          const r = await curl.import(curlFile)
          for (const vm of r.vms) await curl.call('VM.destroy', vm)
          return r
        }
        const [a, b] = await alternate(i, runOurs, runCurl)
        imp.push((bytes / a.ms) * 1000)
        impCurl.push((bytes / b.ms) * 1000)
        log(
          `import run ${i + 1}: ours ${(imp.at(-1)! / 2 ** 20).toFixed(0)} MiB/s, curl ${(impCurl.at(-1)! / 2 ** 20).toFixed(0)} MiB/s`
        )
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

      // Into real files, as users do (written around the page cache, so no memory of the
      // host's is taken either), removed after each run.
      const small = await runWorker<WorkerResult>('export-vm', {
        ...conn,
        vm: 'small',
        out: oursFile,
      })
      await rm(oursFile, { force: true })
      const huge = await runWorker<WorkerResult>('export-vm', {
        ...conn,
        vm: 'huge',
        out: oursFile,
      })
      await rm(oursFile, { force: true })
      figures.push({
        name: `peak RSS exporting a ${hugeMiB / 1024} GiB VM (${(huge.bytes / 2 ** 20).toFixed(0)} MiB on the wire)`,
        value: huge.maxRssMiB,
        unit: 'MiB',
        better: 'lower',
        baseline: {
          name: `the same exporting a ${smallMiB / 1024} GiB VM`,
          value: small.maxRssMiB,
        },
        goal: '< 150 MB and flat',
        met: huge.maxRssMiB * 2 ** 20 < 150e6 && huge.maxRssMiB < small.maxRssMiB * 1.25,
      })
    } finally {
      await curl.close()
      await sim.stop()
      await rm(oursFile, { force: true })
      await rm(curlFile, { force: true })
    }
    return figures
  },
}

/** Runs both sides, ours first on even runs and the baseline first on odd ones. */
async function alternate<A, B>(run: number, ours: () => Promise<A>, baseline: () => Promise<B>) {
  if (run % 2 === 0) {
    const a = await ours()
    return [a, await baseline()] as const
  }
  const b = await baseline()
  return [await ours(), b] as const
}
