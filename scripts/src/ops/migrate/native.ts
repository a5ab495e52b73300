import type { HostSlots } from './host-slots.js'
import type { PlannedVm } from './plan.js'
import { isNull, type PoolInventory } from './records.js'
import { sleep } from '../../lib/sleep.js'
import { xapiCode, type MigrateXapi } from './xapi.js'

/** Everything `VM.migrate_send` needs, obtained from the destination first. */
export type NativeRequest = {
  readonly destHost: string
  /** The map `host.migrate_receive` returned (holds a destination session: never print it). */
  readonly dest: Readonly<Record<string, string>>
  readonly live: boolean
  readonly vdiMap: Readonly<Record<string, string>>
  readonly vifMap: Readonly<Record<string, string>>
  readonly options: Readonly<Record<string, string>>
}

export type RetryNotice = { readonly reason: string; readonly delayMs: number }

/** Backoff between attempts after `TOO_MANY_STORAGE_MIGRATES`. */
export const STORAGE_RETRY = { firstDelayMs: 500, maxDelayMs: 15_000, maxAttempts: 60 } as const

/**
 * The enabled destination hosts, those where this run migrates the fewest VMs first, the master
 * first on ties.
 */
export function candidateHosts(destInventory: PoolInventory, slots: HostSlots): string[] {
  const master = destInventory.pool.master
  const hosts = [...destInventory.hosts]
    .filter(([, h]) => h.enabled)
    .map(([ref]) => ref)
    .sort(
      (a, b) =>
        slots.used(`dest:${a}`) - slots.used(`dest:${b}`) ||
        Number(b === master) - Number(a === master)
    )
  return hosts.length > 0 ? hosts : [master]
}

/** Asks `destHost` (through its management network) to receive a VM: `host.migrate_receive`. */
export async function prepareNative(
  dest: MigrateXapi,
  destInventory: PoolInventory,
  vm: PlannedVm,
  destSr: string,
  destHost: string,
  signal?: AbortSignal
): Promise<NativeRequest> {
  const pif = [...destInventory.pifs.values()].find((p) => p.host === destHost && p.management)
  const network = pif?.network ?? vm.vifs[0]?.network ?? [...destInventory.networks.keys()][0] ?? ''
  const answer = await dest.call<Record<string, string>>(
    'host.migrate_receive',
    [destHost, network, {}],
    { signal }
  )
  const live = vm.powerState === 'Running'
  const vdiMap: Record<string, string> = {}
  for (const disk of vm.disks) vdiMap[disk.vdi] = destSr
  if (vm.suspendVdi !== undefined && !isNull(vm.suspendVdi)) vdiMap[vm.suspendVdi] = destSr
  const vifMap: Record<string, string> = {}
  for (const vif of vm.vifs) vifMap[vif.vif] = vif.network
  // A halted or suspended VM is copied (the source stays until the copy is verified); a running
  // one can only move live.
  const options: Record<string, string> = live ? {} : { copy: 'true' }
  return { destHost, dest: answer, live, vdiMap, vifMap, options }
}

/**
 * Logs out the destination session `host.migrate_receive` made for `req` (xapi leaves it open),
 * once the migration is over or the route not taken. Best effort, on its own deadline.
 */
export async function releaseNative(dest: MigrateXapi, req: NativeRequest): Promise<void> {
  const session = req.dest.session_id
  if (typeof session !== 'string' || session === '') return
  await dest.logoutSession(session, { signal: AbortSignal.timeout(30_000) }).catch(() => {})
}

/** `VM.assert_can_migrate`: throws the reason a native migration would fail. */
export async function assertNative(
  source: MigrateXapi,
  vmRef: string,
  req: NativeRequest,
  signal?: AbortSignal
): Promise<void> {
  await source.call(
    'VM.assert_can_migrate',
    [vmRef, req.dest, req.live, req.vdiMap, req.vifMap, req.options],
    { signal }
  )
}

/**
 * Runs `fn` again after `TOO_MANY_STORAGE_MIGRATES` (another tool's migrations count too),
 * with exponential backoff; other errors and aborts go through.
 */
export async function retryStorageMigrates<T>(
  fn: () => Promise<T>,
  options: { signal?: AbortSignal; onRetry?: (notice: RetryNotice) => void }
): Promise<T> {
  let delay: number = STORAGE_RETRY.firstDelayMs
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn()
    } catch (error) {
      if (xapiCode(error) !== 'TOO_MANY_STORAGE_MIGRATES' || attempt >= STORAGE_RETRY.maxAttempts)
        throw error
      options.onRetry?.({ reason: 'TOO_MANY_STORAGE_MIGRATES', delayMs: delay })
      await sleep(delay, options.signal)
      delay = Math.min(STORAGE_RETRY.maxDelayMs, delay * 2)
    }
  }
}

/**
 * `Async.VM.migrate_send` with the maps of `req`, holding a storage-migration slot on the source
 * and destination hosts. `onTask` gets the task ref before waiting (it goes to the journal).
 * On abort the task is cancelled; the task is always destroyed. Resolves with the VM's ref in the
 * destination pool.
 */
export async function copyNative(
  source: MigrateXapi,
  vm: PlannedVm,
  req: NativeRequest,
  options: {
    slots: HostSlots
    signal?: AbortSignal
    onTask?: (taskRef: string) => Promise<void>
    onRetry?: (notice: RetryNotice) => void
  }
): Promise<string> {
  const { signal } = options
  const release = await options.slots.acquire(
    [`source:${vm.sourceHost}`, `dest:${req.destHost}`],
    signal
  )
  try {
    return await retryStorageMigrates(
      async () => {
        const taskRef = await source.call<string>(
          'Async.VM.migrate_send',
          [vm.ref, req.dest, req.live, req.vdiMap, req.vifMap, req.options],
          { signal }
        )
        await options.onTask?.(taskRef)
        const result = await watchOwnedTask(source, taskRef, signal)
        if (typeof result !== 'string' || isNull(result)) {
          throw new Error(`VM.migrate_send returned no VM ref (${String(result)})`)
        }
        return result
      },
      { signal, onRetry: options.onRetry }
    )
  } finally {
    release()
  }
}

/** Waits for a task we created; cancels it on abort (and waits a little for its end); destroys it. */
export async function watchOwnedTask(
  xapi: MigrateXapi,
  taskRef: string,
  signal?: AbortSignal
): Promise<unknown> {
  try {
    return await xapi.watchTask(taskRef, { signal })
  } catch (error) {
    if (signal?.aborted) {
      await xapi.call('task.cancel', [taskRef]).catch(() => {})
      await xapi.watchTask(taskRef, { signal: AbortSignal.timeout(30_000) }).catch(() => {})
    }
    throw error
  } finally {
    await xapi.call('task.destroy', [taskRef]).catch(() => {})
  }
}
