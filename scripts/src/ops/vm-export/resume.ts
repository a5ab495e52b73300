import { stat } from 'node:fs/promises'
import { fileSha256 } from '../transfer/fs-utils.js'
import { verifyFile } from '../transfer/verify-file.js'
import type { ManifestEntry, ManifestStore } from './manifest.js'
import { exportPaths, type Compression } from './naming.js'

/** What is at an export's final name before the export. */
export type ExistingExport =
  | { readonly state: 'absent' }
  | { readonly state: 'verified'; readonly entry: ManifestEntry }
  /** A file that is not a verified export of this kind: it will be replaced. */
  | { readonly state: 'invalid'; readonly reason: string }

/**
 * Whether the export of a VM is already in `--out`: a file listed in the manifest whose size and
 * SHA-256 still match, or — after a crash between the rename and the manifest update — a file
 * that verifies as an XVA archive, which is then added to the manifest.
 */
export async function checkExisting(
  manifest: ManifestStore,
  vm: {
    readonly uuid: string
    readonly name: string
    readonly file: string
    readonly record: Readonly<Record<string, unknown>>
  },
  options: {
    readonly compression: Compression
    readonly metadataOnly: boolean
    readonly pool: ManifestEntry['pool']
    readonly signal: AbortSignal
  }
): Promise<ExistingExport> {
  const { final } = exportPaths(manifest.dir, vm.file)
  let size: number
  let mtime: Date
  try {
    const s = await stat(final)
    if (!s.isFile()) return { state: 'invalid', reason: `${final} is not a regular file` }
    size = s.size
    mtime = s.mtime
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { state: 'absent' }
    throw error
  }
  const entry = manifest.get(vm.file)
  if (entry !== undefined && entry.uuid === vm.uuid) {
    if (entry.metadataOnly !== options.metadataOnly) {
      const kind = entry.metadataOnly ? 'a metadata-only export' : 'a full export'
      return { state: 'invalid', reason: `${vm.file} holds ${kind}` }
    }
    if (entry.bytes !== size) {
      return {
        state: 'invalid',
        reason: `${vm.file} has ${size} bytes, the manifest says ${entry.bytes}`,
      }
    }
    const sha256 = await fileSha256(final, options.signal)
    if (sha256 !== entry.sha256) {
      return { state: 'invalid', reason: `${vm.file} does not match its SHA-256 in the manifest` }
    }
    return { state: 'verified', entry }
  }
  let verified
  try {
    verified = await verifyFile(final, {
      metadataOnly: options.metadataOnly,
      signal: options.signal,
    })
  } catch (error) {
    options.signal.throwIfAborted()
    return { state: 'invalid', reason: `${vm.file}: ${(error as Error).message}` }
  }
  const adopted: ManifestEntry = {
    uuid: vm.uuid,
    name: vm.name,
    file: vm.file,
    bytes: verified.bytes,
    sha256: verified.sha256,
    compression: options.compression,
    metadataOnly: options.metadataOnly,
    time: mtime.toISOString(),
    durationMs: 0,
    source: 'vm',
    pool: options.pool,
    record: vm.record,
  }
  await manifest.put(adopted)
  return { state: 'verified', entry: adopted }
}
