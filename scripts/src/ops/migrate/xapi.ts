import type {
  MHost,
  MNetwork,
  MPif,
  MPool,
  MSr,
  MVbd,
  MVdi,
  MVif,
  MVm,
  PoolInventory,
} from './records.js'

type Signal = { readonly signal?: AbortSignal }

/** Progress of a stream copy, as the transfer API reports it. */
export type CopyProgress = {
  readonly bytes: number
  readonly fraction?: number
  readonly rateBytesPerSec?: number
}

/**
 * What vm-migrate needs from one pool's client (structural: the command adapts `XapiClient` and
 * the transfer API to it). `call` prepends the session itself.
 */
export type MigrateXapi = {
  call<T = unknown>(method: string, params: readonly unknown[], options?: Signal): Promise<T>
  /** `Async.<method>` watched to completion; cancelled on abort; always destroyed. */
  callAsync<T = unknown>(method: string, params: readonly unknown[], options?: Signal): Promise<T>
  /** Waits for a task created elsewhere and resolves with its decoded result. */
  watchTask(ref: string, options?: Signal): Promise<unknown>
  getAllRecords<R>(cls: string, options?: Signal): Promise<ReadonlyMap<string, R>>
  /** Logs out a session that is not the client's own (`host.migrate_receive`'s). */
  logoutSession(ref: string, options?: Signal): Promise<void>
  /**
   * Copies a halted (or suspended) VM of this pool into `dest` through this process, verified in
   * flight, no temporary file (`relayVm`). Resolves with the new VMs' refs; when the import
   * succeeded but the export then failed, the error carries their refs as `importedVms`.
   */
  relayVm(
    dest: MigrateXapi,
    vm: string,
    options: Signal & {
      readonly sr: string
      readonly preservePowerState?: boolean
      readonly onProgress?: (progress: CopyProgress) => void
      /** The export's task, before any byte moves; a rejection ends the copy. */
      readonly onExportTask?: (taskRef: string) => Promise<void>
      /** The import's task, before the upload starts: what the import makes is marked with it. */
      readonly onImportTask?: (taskRef: string) => Promise<void>
    }
  ): Promise<string[]>
}

/** Reads everything the plan needs from one pool. */
export async function loadInventory(
  xapi: MigrateXapi,
  signal?: AbortSignal
): Promise<PoolInventory> {
  const get = <R>(cls: string) => xapi.getAllRecords<R>(cls, { signal })
  const [pools, hosts, vms, vbds, vdis, srs, vifs, networks, pifs] = await Promise.all([
    get<MPool>('pool'),
    get<MHost>('host'),
    get<MVm>('VM'),
    get<MVbd>('VBD'),
    get<MVdi>('VDI'),
    get<MSr>('SR'),
    get<MVif>('VIF'),
    get<MNetwork>('network'),
    get<MPif>('PIF'),
  ])
  const first = [...pools][0]
  if (first === undefined) throw new Error('the pool has no pool object')
  return {
    poolRef: first[0],
    pool: first[1],
    hosts,
    vms,
    vbds,
    vdis,
    srs,
    vifs,
    networks,
    pifs,
  }
}

/** The XAPI error code of `error`, if it is one. */
export function xapiCode(error: unknown): string | undefined {
  const e = error as { code?: unknown; params?: unknown } | null
  return typeof e?.code === 'string' && Array.isArray(e.params) ? e.code : undefined
}

/** Runs `fn`, ignoring the XAPI errors listed (e.g. `HANDLE_INVALID` when it is gone already). */
export async function ignoring<T>(
  codes: readonly string[],
  fn: () => Promise<T>
): Promise<T | undefined> {
  try {
    return await fn()
  } catch (error) {
    const code = xapiCode(error)
    if (code !== undefined && codes.includes(code)) return undefined
    throw error
  }
}
