import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { writeFileAtomic } from '../transfer/fs-utils.js'
import type { Compression, CompressOn } from './naming.js'

/** Name of the manifest in `--out`. */
export const MANIFEST_FILE = 'manifest.json'
/** Name of the checksum list in `--out` (`sha256sum -c SHA256SUMS`). */
export const SUMS_FILE = 'SHA256SUMS'
/** Value of `format` in the manifest. */
export const MANIFEST_FORMAT = 'xapi-ops/vm-export/v1'

/** One exported VM in `manifest.json`. */
export type ManifestEntry = {
  /** The VM's uuid (also when a snapshot of it was exported). */
  readonly uuid: string
  readonly name: string
  /** File name, relative to the manifest's directory. */
  readonly file: string
  readonly bytes: number
  /** SHA-256 of the file, lower-case hex. */
  readonly sha256: string
  readonly compression: Compression
  /** Who compressed the file: the host (`use_compression`) or this machine (zstd). */
  readonly compressedOn?: CompressOn
  readonly metadataOnly: boolean
  /** When the export finished (ISO 8601). */
  readonly time: string
  readonly durationMs: number
  /** What was exported: the VM itself, or a snapshot of it taken for the export. */
  readonly source: 'vm' | 'snapshot'
  readonly pool: { readonly uuid: string; readonly name: string }
  /** The VM record (wire field names) when it was exported. */
  readonly record: Readonly<Record<string, unknown>>
}

/** `manifest.json`. */
export type Manifest = {
  readonly format: typeof MANIFEST_FORMAT
  readonly updated: string
  readonly vms: readonly ManifestEntry[]
}

/**
 * The manifest of an output directory: loaded once, updated after each export, written
 * atomically with `SHA256SUMS` (one write at a time, the last state wins).
 */
export class ManifestStore {
  readonly dir: string
  readonly #entries = new Map<string, ManifestEntry>()
  #writing: Promise<void> = Promise.resolve()

  private constructor(dir: string) {
    this.dir = dir
  }

  /**
   * Reads `manifest.json` from `dir` if there is one. A manifest that cannot be parsed is
   * ignored (its files are verified again before being trusted); `warning` says so.
   */
  static async load(dir: string): Promise<{ store: ManifestStore; warning?: string }> {
    const store = new ManifestStore(dir)
    let text: string
    try {
      text = await readFile(join(dir, MANIFEST_FILE), 'utf8')
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { store }
      return { store, warning: `cannot read ${MANIFEST_FILE}: ${(error as Error).message}` }
    }
    try {
      const parsed = JSON.parse(text) as Partial<Manifest>
      if (!Array.isArray(parsed.vms)) throw new Error('no "vms" array')
      for (const entry of parsed.vms) {
        if (isEntry(entry)) store.#entries.set(entry.file, entry)
      }
      return { store }
    } catch (error) {
      return {
        store,
        warning: `ignoring ${MANIFEST_FILE}, which is not a valid manifest (${(error as Error).message}): existing files will be verified again`,
      }
    }
  }

  get(file: string): ManifestEntry | undefined {
    return this.#entries.get(file)
  }

  entries(): ManifestEntry[] {
    return [...this.#entries.values()].sort((a, b) => a.file.localeCompare(b.file))
  }

  /** Records an entry (replacing the one of the same file) and writes both files. */
  put(entry: ManifestEntry): Promise<void> {
    this.#entries.set(entry.file, entry)
    return this.#write()
  }

  /** Forgets a file (e.g. replaced by an export of another kind) and writes both files. */
  remove(file: string): Promise<void> {
    if (!this.#entries.delete(file)) return this.#writing
    return this.#write()
  }

  #write(): Promise<void> {
    const next = this.#writing.catch(() => {}).then(() => this.#writeNow())
    this.#writing = next
    return next
  }

  async #writeNow(): Promise<void> {
    const vms = this.entries()
    const manifest: Manifest = { format: MANIFEST_FORMAT, updated: new Date().toISOString(), vms }
    await writeFileAtomic(join(this.dir, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`)
    await writeFileAtomic(join(this.dir, SUMS_FILE), formatSums(vms))
  }
}

/** `SHA256SUMS` as `sha256sum` writes it: `<hex>  <file>` per line (text mode). */
export function formatSums(entries: readonly Pick<ManifestEntry, 'sha256' | 'file'>[]): string {
  return entries.map((e) => `${e.sha256}  ${e.file}\n`).join('')
}

function isEntry(value: unknown): value is ManifestEntry {
  const e = value as Partial<ManifestEntry> | null
  return (
    typeof e === 'object' &&
    e !== null &&
    typeof e.file === 'string' &&
    !e.file.includes('/') &&
    typeof e.uuid === 'string' &&
    typeof e.bytes === 'number' &&
    typeof e.sha256 === 'string' &&
    /^[0-9a-f]{64}$/.test(e.sha256)
  )
}
