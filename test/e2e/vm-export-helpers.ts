/**
 * Shared by the vm-export and vm-import end-to-end tests: simulator state queries and checks of
 * what vm-export wrote.
 */
import { execFile } from 'node:child_process'
import { createReadStream } from 'node:fs'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { verifyXva, type XvaSummary } from '@xapi-ops/xapi'
import type { PoolDb, SimRecord } from '@xapi-ops/xapi-sim'

export const exec = promisify(execFile)

/** The non-snapshot, non-template VM named `name`. */
export function findVm(db: PoolDb, name: string): [string, SimRecord] {
  const hit = db.find('VM', (r) => r.name_label === name && !r.is_a_snapshot && !r.is_a_template)
  if (!hit) throw new Error(`no VM ${name}`)
  return hit
}

/** Counts that must not grow after an export: snapshots and VDIs left behind show here. */
export function objectCounts(db: PoolDb): { snapshots: number; vdis: number; vms: number } {
  const vms = [...db.all('VM').values()]
  return {
    snapshots: vms.filter((r) => r.is_a_snapshot).length,
    vms: vms.filter((r) => !r.is_a_snapshot).length,
    vdis: db.all('VDI').size,
  }
}

/** Content hashes of a VM's disks, in userdevice order. */
export function diskHashes(db: PoolDb, vmRef: string): string[] {
  const disks: Array<[string, string]> = []
  for (const vbdRef of db.get(vmRef)!.VBDs as string[]) {
    const vbd = db.get(vbdRef)!
    if (vbd.type !== 'Disk') continue
    const content = db.vdiContent.get(vbd.VDI as string)
    disks.push([String(vbd.userdevice), content ? content.hash() : 'no content'])
  }
  return disks.sort(([a], [b]) => a.localeCompare(b)).map(([, h]) => h)
}

/** Verifies an XVA file as xapi's importer would. */
export function verifyFile(path: string, metadataOnly = false): Promise<XvaSummary> {
  return verifyXva(createReadStream(path), { metadataOnly })
}

/** Files of a directory, sorted. */
export async function listDir(dir: string): Promise<string[]> {
  return (await readdir(dir)).sort()
}

/** `manifest.json` of an output directory. */
export async function readManifest(dir: string): Promise<{
  format: string
  vms: Array<
    Record<string, unknown> & { uuid: string; file: string; sha256: string; bytes: number }
  >
}> {
  return JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8'))
}

/** `sha256sum -c SHA256SUMS` in `dir`: resolves with its output, rejects if a file fails. */
export async function sha256sumCheck(dir: string): Promise<string> {
  const { stdout } = await exec('sha256sum', ['-c', 'SHA256SUMS'], { cwd: dir })
  return stdout
}
