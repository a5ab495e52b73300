import { XapiTransportError } from '../errors.js'
import type { Ref } from '@xapi-ops/xapi-formats'
import type { XapiClient } from '../client.js'
import type { TransferClient } from './client-shape.js'
import { readExportInPlace } from './export-in-place.js'
import { openExport, type OpenedExport } from './export-open.js'
import { streamBody } from './export-vm.js'
import { destroyConnection, wrapSocketError, type Connection } from './http-connection.js'
import { decodeVmRefs } from './import-result.js'
import { checkWritable, importVm, openImport } from './import-vm.js'
import { resolveExportOptions, resolveImportOptions } from './options.js'
import type { TransferProgress } from './progress.js'
import { MAX_READ_BYTES, RING_BYTES } from './read-ring.js'
import type { TransferRun } from './run.js'
import { describeTarget } from './url.js'

/**
 * Bytes read from the export and not yet taken by the import's socket, at most: they stay in the
 * export connection's read ring until written, so this plus the verifier's block must fit in it.
 */
export const RELAY_IN_FLIGHT_BYTES = 4 * 1024 * 1024
const RESUME_BELOW_BYTES = RELAY_IN_FLIGHT_BYTES / 2
if (RELAY_IN_FLIGHT_BYTES + 2 * 1024 * 1024 > RING_BYTES - 2 * MAX_READ_BYTES) {
  throw new Error('the read ring cannot hold what a relay keeps in flight')
}

/** Options of {@link relayVm}. */
export type RelayVmOptions = {
  /** The destination SR (`sr_id`). @default the destination pool's default SR */
  readonly sr?: Ref<'SR'>
  /** Keep a suspended VM suspended (`preserve_power_state`). @default false */
  readonly preservePowerState?: boolean
  /** Replay xapi's importer on the bytes in flight. @default true */
  readonly verify?: boolean
  readonly signal?: AbortSignal
  /** No bytes and no task progress for that long, on either side → `XAPI_CLIENT_STALLED`. */
  readonly stallTimeoutMs?: number
  /** Progress of the bytes handed to the destination. */
  readonly onProgress?: (progress: TransferProgress) => void
  /**
   * Called with the export's task once xapi took the export over, before any byte moves (to
   * record it somewhere, say). A rejection ends the relay with its error.
   */
  readonly onExportTask?: (task: Ref<'task'>) => Promise<void> | void
  /** The import's task, as `importVm`'s `onTask` gives it (what the import makes is marked with it). */
  readonly onImportTask?: (task: Ref<'task'>) => Promise<void> | void
}

/**
 * Copies a halted (or suspended) VM from one pool to another through this process: `exportVm`
 * piped into `importVm`, the export verified in flight, no temporary file, memory bounded.
 * Resolves with the new VMs' refs once both tasks succeeded.
 *
 * Over `http:` (and the dom0 socket) the export socket reads in place into a reused buffer and
 * each read goes to the verifier and to the import socket as it is: no allocation per read, no
 * stream in between (about half the CPU of `importVm(target, exportVm(…).body)`). Over `https:`
 * it is that pipe.
 *
 * On failure the error is that of the side that failed first (the export's task error or
 * verification failure, or the import's task error); xapi removes what a failed import created. When the import succeeded
 * but the export then failed (its task reported an error after the last byte) the new VMs cannot
 * be trusted: the error carries their refs as `importedVms`, for the caller to remove.
 */
export async function relayVm(
  source: XapiClient | TransferClient,
  vm: Ref<'VM'>,
  target: XapiClient | TransferClient,
  options: RelayVmOptions = {}
): Promise<Ref<'VM'>[]> {
  const { signal, stallTimeoutMs } = options
  const eo = resolveExportOptions({
    signal,
    stallTimeoutMs,
    verify: options.verify,
    preservePowerState: options.preservePowerState,
  })
  const exp = await openExport(source, vm, eo, { directReads: true })
  try {
    await options.onExportTask?.(exp.run.task.ref)
  } catch (error) {
    return await abandonExport(exp, error)
  }
  const importOptions = {
    sr: options.sr,
    signal,
    stallTimeoutMs,
    onProgress: options.onProgress,
    onTask: options.onImportTask,
  }
  if (!exp.conn.direct || exp.chunked) {
    const { body, done } = streamBody(exp.run, exp.conn, { ...eo, chunked: exp.chunked })
    // A failed import destroys the body: the export then only says so.
    return settle(importVm(target, body, importOptions), exp.run.conclude(done), (error) =>
      isCode(error, 'XAPI_CLIENT_BODY_DESTROYED')
    )
  }
  const length = exp.run.meter.totalBytes
  let imp
  try {
    // The export waits meanwhile: its socket is not read until the upload can take the bytes.
    imp = await openImport(target, resolveImportOptions({ ...importOptions, length }))
  } catch (error) {
    return await abandonExport(exp, error)
  }
  const relay = relayInPlace(exp, imp.run, imp.conn, eo.verify)
  return settle(
    imp.run.conclude(relay.importHttp).then(decodeVmRefs),
    exp.run.conclude(relay.exportHttp),
    () => relay.firstFailure() === 'import'
  )
}

function isCode(error: unknown, code: string): boolean {
  return (error as { code?: unknown } | null)?.code === code
}

async function abandonExport(exp: OpenedExport, error: unknown): Promise<never> {
  destroyConnection(exp.conn, true)
  await exp.run.conclude(Promise.reject(error)).catch(() => {})
  throw error
}

/**
 * Both sides' outcomes: the export's error unless `importFirst` says the export only failed
 * because the import did.
 */
async function settle(
  imported: Promise<Ref<'VM'>[]>,
  exported: Promise<unknown>,
  importFirst: (exportError: unknown) => boolean
): Promise<Ref<'VM'>[]> {
  const [i, e] = await Promise.allSettled([imported, exported])
  if (i.status === 'rejected' && e.status === 'rejected' && importFirst(e.reason)) throw i.reason
  if (e.status === 'rejected') {
    if (i.status === 'fulfilled' && i.value.length > 0) {
      Object.assign(e.reason as object, { importedVms: i.value })
    }
    throw e.reason
  }
  if (i.status === 'rejected') throw i.reason
  return i.value
}

/**
 * Reads the export in place and writes each read to the import socket as it is; the export
 * pauses while RELAY_IN_FLIGHT_BYTES wait to be written. A failure on either side fails the other.
 * `exportHttp` settles once the export body ended and verified, `importHttp` once the upload was
 * half-closed after its last byte.
 */
function relayInPlace(
  exp: OpenedExport,
  impRun: TransferRun,
  up: Connection,
  verify: boolean
): {
  exportHttp: Promise<void>
  importHttp: Promise<void>
  firstFailure: () => 'export' | 'import' | undefined
} {
  const { run: expRun, conn } = exp
  let first: 'export' | 'import' | undefined
  // Each side's failure ends the other, unless that side is already over (a success). The
  // export may have failed while the upload was being opened: then at once.
  whenAborted(expRun.signal, () => {
    destroyConnection(conn, !expRun.over)
    if (expRun.over) return
    first ??= 'export'
    impRun.fail(expRun.signal.reason)
  })
  whenAborted(impRun.signal, () => {
    if (impRun.over) return
    first ??= 'import'
    expRun.fail(impRun.signal.reason)
  })
  let follow!: (exported: Promise<void>) => void
  const exportHttp = new Promise<void>((resolve, reject) => {
    follow = (exported) => exported.then(resolve, reject)
    whenAborted(expRun.signal, () => reject(expRun.signal.reason))
  })
  exportHttp.catch(() => {})
  const importHttp = pump(exp, up, impRun, verify, follow)
  return { exportHttp, importHttp, firstFailure: () => first }
}

/**
 * Writes each read of the export to the import socket as it is; the export holds while
 * RELAY_IN_FLIGHT_BYTES wait to be written. Resolves once the export ended and verified and the
 * upload was half-closed.
 */
async function pump(
  exp: OpenedExport,
  up: Connection,
  impRun: TransferRun,
  verify: boolean,
  follow: (exported: Promise<void>) => void
): Promise<void> {
  let inFlight = 0
  let done = false
  impRun.setWaitingOnPeer(() => inFlight < RELAY_IN_FLIGHT_BYTES)
  up.stream.once('close', () => {
    if (done) return
    impRun.fail(
      up.error
        ? wrapSocketError(up.error, up.target)
        : new XapiTransportError(
            `PUT ${describeTarget(up.target)}: connection closed by the server`
          )
    )
  })
  const exported = readExportInPlace(
    exp,
    // The relay asks for an uncompressed export (the verifier sniffs all the same).
    { verify, metadataOnly: false, compressed: false },
    {
      onData(view, _placed, flow) {
        if (impRun.signal.aborted) return
        try {
          checkWritable(up)
        } catch (error) {
          impRun.fail(error)
          return
        }
        const n = view.length
        inFlight += n
        up.stream.write(view, (error) => {
          if (error) return
          inFlight -= n
          impRun.meter.addBytes(n)
          if (inFlight < RESUME_BELOW_BYTES) flow.release('peer')
        })
        if (inFlight >= RELAY_IN_FLIGHT_BYTES) flow.hold('peer')
      },
    }
  )
  follow(exported)
  await Promise.race([exported, aborted(impRun.signal)])
  checkWritable(up)
  done = true
  // Half-close: for a close-delimited body this FIN is the end of the archive.
  up.stream.end()
}

/** Calls `fn` once `signal` aborts, or now if it has. */
function whenAborted(signal: AbortSignal, fn: () => void): void {
  if (signal.aborted) fn()
  else signal.addEventListener('abort', fn, { once: true })
}

/** Rejects with `signal.reason` once it aborts. */
function aborted(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(signal.reason as Error)
    else signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true })
  })
}
