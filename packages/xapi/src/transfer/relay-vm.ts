import { XapiTransportError } from '../errors.js'
import type { Ref } from '../refs.js'
import type { XapiClient } from '../client.js'
import type { TransferClient } from './client-shape.js'
import { openExport, type OpenedExport } from './export-open.js'
import { streamBody } from './export-vm.js'
import { destroyConnection, wrapSocketError, type Connection } from './http-connection.js'
import { checkWritable, decodeVmRefs, importVm, openUpload, startImport } from './import-vm.js'
import { resolveExportOptions, resolveImportOptions } from './options.js'
import type { TransferProgress } from './progress.js'
import { MAX_READ_BYTES, RING_BYTES } from './read-ring.js'
import type { TransferRun } from './run.js'
import { describeTarget, type Target } from './url.js'
import { createInFlightVerifier, verifiedFraction } from './verify.js'

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
  const importOptions = { sr: options.sr, signal, stallTimeoutMs, onProgress: options.onProgress }
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
    imp = await startImport(target, resolveImportOptions({ ...importOptions, length }))
  } catch (error) {
    return await abandonExport(exp, error)
  }
  const relay = relayInPlace(exp, imp.run, target, imp.target, eo.verify)
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
  client: XapiClient | TransferClient,
  target: Target,
  verify: boolean
): {
  exportHttp: Promise<void>
  importHttp: Promise<void>
  firstFailure: () => 'export' | 'import' | undefined
} {
  const { run: expRun, conn } = exp
  let first: 'export' | 'import' | undefined
  // Each side's failure ends the other, unless that side is already over (a success).
  expRun.signal.addEventListener(
    'abort',
    () => {
      destroyConnection(conn, !expRun.over)
      if (expRun.over) return
      first ??= 'export'
      impRun.fail(expRun.signal.reason)
    },
    { once: true }
  )
  impRun.signal.addEventListener(
    'abort',
    () => {
      if (impRun.over) return
      first ??= 'import'
      expRun.fail(impRun.signal.reason)
    },
    { once: true }
  )
  let exportEnded!: () => void
  const exportHttp = new Promise<void>((resolve, reject) => {
    exportEnded = resolve
    expRun.signal.addEventListener('abort', () => reject(expRun.signal.reason), { once: true })
  })
  exportHttp.catch(() => {})
  const importHttp = openUpload(impRun, client, target, expRun.meter.totalBytes).then((up) =>
    pump(exp, up, impRun, verify, exportEnded)
  )
  return { exportHttp, importHttp, firstFailure: () => first }
}

function pump(
  exp: OpenedExport,
  up: Connection,
  impRun: TransferRun,
  verify: boolean,
  exportEnded: () => void
): Promise<void> {
  const { run: expRun, conn } = exp
  const direct = conn.direct!
  const raw = conn.raw
  const expected = expRun.meter.totalBytes
  const verifier = verify
    ? createInFlightVerifier({ metadataOnly: false, onError: (e) => expRun.fail(e) })
    : undefined
  if (verifier) expRun.meter.setFractionSource(() => verifiedFraction(verifier))
  let received = 0
  let inFlight = 0
  let verifierFull = false
  let done = false
  const resume = () => {
    if (!verifierFull && inFlight < RESUME_BELOW_BYTES && !expRun.signal.aborted) raw.resume()
  }
  // The export waits on the import's socket while it is full; the import on the export otherwise.
  expRun.setWaitingOnPeer(() => inFlight >= RELAY_IN_FLIGHT_BYTES)
  impRun.setWaitingOnPeer(() => inFlight < RELAY_IN_FLIGHT_BYTES)

  return new Promise<void>((resolve, reject) => {
    impRun.signal.addEventListener('abort', () => reject(impRun.signal.reason), { once: true })
    const take = (view: Buffer) => {
      if (expRun.signal.aborted || impRun.signal.aborted) return
      received += view.length
      expRun.meter.addBytes(view.length)
      if (verifier) {
        try {
          // A decompressor keeps what it is given until it gets to it: a copy (never here: the
          // relay asks for an uncompressed export, but the verifier sniffs, it does not trust).
          if (!verifier.write(view)) {
            verifierFull = true
            raw.pause()
            void verifier.drained().then(() => {
              verifierFull = false
              resume()
            })
          }
        } catch (error) {
          expRun.fail(error)
          return
        }
      }
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
        resume()
      })
      if (inFlight >= RELAY_IN_FLIGHT_BYTES) raw.pause()
    }
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
    raw.once('end', () => {
      if (expected !== undefined && received < expected) {
        expRun.fail(
          new XapiTransportError(
            `GET ${describeTarget(conn.target)} ended after ${received} of ${expected} bytes`
          )
        )
        return
      }
      const finish = () => {
        exportEnded()
        try {
          checkWritable(up)
        } catch (error) {
          impRun.fail(error)
          return
        }
        done = true
        // Half-close: for a close-delimited body this FIN is the end of the archive.
        up.stream.end()
        resolve()
      }
      if (!verifier) return finish()
      verifier.end().then(finish, (error: unknown) => expRun.fail(error))
    })
    raw.once('close', () => {
      if (raw.readableEnded) return
      const cause = conn.error
      expRun.fail(
        cause
          ? wrapSocketError(cause, conn.target)
          : new XapiTransportError(`GET ${describeTarget(conn.target)}: connection closed`)
      )
    })
    direct.onData = (view) => take(view)
    const pending = direct.pending
    direct.pending = undefined
    if (pending) take(pending)
    resume()
  })
}
