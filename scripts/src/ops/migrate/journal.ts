import { open, readFile, rename, unlink } from 'node:fs/promises'
import { dirname } from 'node:path'
import { UsageError } from '../../lib/errors.js'

/** The steps of one VM's migration, in order (issue 7). */
export const JOURNAL_STEPS = [
  'planned',
  'copying',
  'copied',
  'verified',
  'started',
  'source_deleted',
] as const
export type JournalStep = (typeof JOURNAL_STEPS)[number]

/** What verification expects of the copy; kept so a resume can verify without the source. */
export type Expectation = {
  readonly disks: ReadonlyArray<{
    readonly userdevice: string
    readonly virtualSize: number
    readonly sr: string
  }>
  readonly vifs: ReadonlyArray<{
    readonly device: string
    readonly network: string
    readonly networkName: string
    readonly mac: string
    readonly mtu: number
  }>
}

/** One VM's record in the journal, keyed by the source VM's uuid. */
export type JournalEntry = {
  readonly uuid: string
  readonly name: string
  readonly step: JournalStep
  /** `done`: nothing left to do; `failed`: a rerun retries it. */
  readonly status: 'in_progress' | 'done' | 'failed' | 'skipped'
  readonly method?: 'native' | 'stream'
  /** The copy in the destination pool. */
  readonly newVm?: string
  readonly newVmRef?: string
  /** The source-side task of the copy (migrate_send or export), to cancel after a crash. */
  readonly taskRef?: string
  /**
   * The destination tasks of the stream imports made for this VM: xapi marks the networks an
   * import had to make with its task, and a later run removes those left unused.
   */
  readonly importTasks?: readonly string[]
  /** Power state before we touched it: `--start` and the restart after a failure use it. */
  readonly wasRunning: boolean
  /** We shut the source down (stream copies of running VMs). */
  readonly shutDownByUs: boolean
  /** The source VM was moved (native live migration) and no longer exists in the source pool. */
  readonly sourceGone?: boolean
  readonly expect?: Expectation
  readonly error?: string
  readonly updatedAt: string
}

type JournalFile = {
  readonly version: 1
  readonly source: string
  readonly destination: string
  readonly vms: Record<string, JournalEntry>
}

/** Index of `step` in {@link JOURNAL_STEPS}. */
export function stepIndex(step: JournalStep): number {
  return JOURNAL_STEPS.indexOf(step)
}

/**
 * The migration journal: each VM's step, written atomically (temporary file, fsync, rename) on
 * every change, so that a rerun after a crash or `kill -9` knows what was done. Without a file
 * it only keeps the entries in memory.
 */
export class Journal {
  readonly file: string | undefined
  readonly #data: JournalFile
  #writing: Promise<void> = Promise.resolve()

  private constructor(file: string | undefined, data: JournalFile) {
    this.file = file
    this.#data = data
  }

  /**
   * Opens (or starts) the journal of a migration from pool `source` to `destination` (pool
   * uuids). Throws {@link UsageError} when the file is not a journal or belongs to other pools.
   */
  static async open(
    file: string | undefined,
    pools: { source: string; destination: string }
  ): Promise<Journal> {
    const fresh: JournalFile = { version: 1, ...pools, vms: {} }
    if (file === undefined) return new Journal(undefined, fresh)
    let text: string
    try {
      text = await readFile(file, 'utf8')
    } catch (error) {
      if ((error as { code?: string }).code !== 'ENOENT') {
        throw new UsageError(`cannot read --journal ${file}: ${(error as Error).message}`)
      }
      return new Journal(file, fresh)
    }
    const data = parseJournal(text, file)
    if (data.source !== pools.source || data.destination !== pools.destination) {
      throw new UsageError(
        `--journal ${file} belongs to a migration from pool ${data.source} to ${data.destination}, ` +
          `not from ${pools.source} to ${pools.destination}`
      )
    }
    return new Journal(file, data)
  }

  get(uuid: string): JournalEntry | undefined {
    return this.#data.vms[uuid]
  }

  entries(): JournalEntry[] {
    return Object.values(this.#data.vms)
  }

  /** Merges `patch` into the VM's entry and writes the journal; resolves once it is on disk. */
  update(
    uuid: string,
    patch: Partial<Omit<JournalEntry, 'uuid' | 'updatedAt'>> & { name?: string }
  ): Promise<void> {
    const previous = this.#data.vms[uuid]
    const entry: JournalEntry = {
      name: '',
      step: 'planned',
      status: 'in_progress',
      wasRunning: false,
      shutDownByUs: false,
      ...previous,
      ...patch,
      uuid,
      updatedAt: new Date().toISOString(),
    }
    if (patch.status !== undefined && patch.status !== 'failed' && patch.error === undefined) {
      delete (entry as { error?: string }).error
    }
    this.#data.vms[uuid] = entry
    return this.flush()
  }

  /** Waits for pending writes; writes are serialised so the last state always wins. */
  flush(): Promise<void> {
    const file = this.file
    if (file === undefined) return Promise.resolve()
    const text = `${JSON.stringify(this.#data, null, 2)}\n`
    this.#writing = this.#writing.catch(() => {}).then(() => writeAtomic(file, text))
    return this.#writing
  }
}

async function writeAtomic(file: string, text: string): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`
  const handle = await open(tmp, 'w', 0o600)
  try {
    await handle.writeFile(text, 'utf8')
    await handle.sync()
  } catch (error) {
    await handle.close().catch(() => {})
    await unlink(tmp).catch(() => {})
    throw error
  }
  await handle.close()
  await rename(tmp, file)
  // Persist the rename itself (best effort: not every file system lets a directory be fsynced).
  const dir = await open(dirname(file), 'r').catch(() => undefined)
  await dir
    ?.sync()
    .catch(() => {})
    .finally(() => dir.close())
}

function parseJournal(text: string, file: string): JournalFile {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (error) {
    throw new UsageError(`--journal ${file} is not valid JSON: ${(error as Error).message}`)
  }
  const v = value as Partial<JournalFile> | null
  if (
    v === null ||
    typeof v !== 'object' ||
    v.version !== 1 ||
    typeof v.source !== 'string' ||
    typeof v.destination !== 'string' ||
    typeof v.vms !== 'object' ||
    v.vms === null
  ) {
    throw new UsageError(`--journal ${file} is not a vm-migrate journal (version 1)`)
  }
  for (const [uuid, entry] of Object.entries(v.vms)) {
    const e = entry as Partial<JournalEntry> | null
    if (
      e === null ||
      typeof e !== 'object' ||
      e.uuid !== uuid ||
      !JOURNAL_STEPS.includes(e.step as JournalStep) ||
      !['in_progress', 'done', 'failed', 'skipped'].includes(e.status as string) ||
      (e.importTasks !== undefined &&
        !(Array.isArray(e.importTasks) && e.importTasks.every((t) => typeof t === 'string')))
    ) {
      throw new UsageError(`--journal ${file}: bad entry for VM ${uuid}`)
    }
  }
  return { version: 1, source: v.source, destination: v.destination, vms: { ...v.vms } }
}
