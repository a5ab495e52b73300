import { hostname } from 'node:os'
import { join } from 'node:path'
import { removeQuietly, writeFileAtomic } from '../transfer/fs-utils.js'

/** `<out>/.vm-export-pending-<pid>.json`: what one run has to undo on the pool. */
export const PENDING_PREFIX = '.vm-export-pending-'

/** An export in flight and what it changed on the pool, to undo once it is over. */
export type PendingEntry = {
  readonly vm: string
  readonly name: string
  readonly action: 'export' | 'snapshot' | 'offline'
  /** The `.part` file being written (a name in `--out`). */
  readonly part?: string
  /** The snapshot taken for the export, once xapi made it. */
  readonly snapshot?: { readonly ref: string; readonly uuid: string }
  /** Offline: the host it ran on, and whether it was paused. */
  readonly host?: string
  readonly paused?: boolean
  readonly since: string
}

export type PendingFile = {
  readonly version: 1
  readonly pid: number
  readonly hostname: string
  /** The pool's uuid: another pool's changes are not ours to undo. */
  readonly pool: string
  readonly entries: Record<string, PendingEntry>
}

/**
 * The exports a run has in flight, with the snapshots it took and the VMs it shut down for them,
 * written to a file in `--out` (atomically) before each change and struck off once it was undone. A run killed in between (kill -9, a
 * power cut) leaves the file behind; the next run into the same directory undoes what it lists
 * (see `recoverPending`). Writes are serialised; the file is removed once empty.
 */
export class PendingStore {
  readonly file: string
  readonly #data: PendingFile
  #writing: Promise<void> = Promise.resolve()

  constructor(dir: string, pool: string) {
    this.file = join(dir, `${PENDING_PREFIX}${process.pid}.json`)
    this.#data = { version: 1, pid: process.pid, hostname: hostname(), pool, entries: {} }
  }

  /** Records (or updates) the VM's entry; resolves once it is on disk. */
  set(entry: Omit<PendingEntry, 'since'> & { readonly since?: string }): Promise<void> {
    const previous = this.#data.entries[entry.vm]
    this.#data.entries[entry.vm] = {
      ...previous,
      ...entry,
      since: entry.since ?? previous?.since ?? new Date().toISOString(),
    }
    return this.#flush()
  }

  /** Strikes the VM off: what it recorded was undone. */
  delete(vm: string): Promise<void> {
    if (!(vm in this.#data.entries)) return this.#writing
    delete this.#data.entries[vm]
    return this.#flush()
  }

  #flush(): Promise<void> {
    const empty = Object.keys(this.#data.entries).length === 0
    const text = `${JSON.stringify(this.#data, null, 2)}\n`
    this.#writing = this.#writing
      .catch(() => {})
      .then(() => (empty ? removeQuietly(this.file) : writeFileAtomic(this.file, text)))
    return this.#writing
  }
}
