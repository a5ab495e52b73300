import { Readable } from 'node:stream'
import { XapiClientError, XapiTransportError } from '../errors.js'
import type { Ref, XvaCompression } from '@xapi-ops/xapi-formats'
import type { TransferClient } from './client-shape.js'
import type { XapiClient } from '../client.js'
import { openExport } from './export-open.js'
import { destroyConnection, wrapSocketError, type Connection } from './http-connection.js'
import { resolveExportOptions, type ExportVmOptions } from './options.js'
import { isTransportFailure, type TransferRun } from './run.js'
import { describeTarget } from './url.js'
import { askedCompression, createInFlightVerifier, verifiedFraction } from './verify.js'
import { ChunkedDecoder } from './chunked.js'

/** What `exportVm` resolves with. */
export type ExportVmResult = {
  /**
   * The archive (`.xva`, or `.xva.gz`/`.xva.zst` as asked). Consume it or destroy it: destroying
   * it cancels the export.
   */
  readonly body: Readable
  /**
   * Settles once `body` has been read to its end and the XAPI task is over: rejects with the
   * task's `XapiError`, the XVA verification error, `XAPI_CLIENT_STALLED`, or `signal.reason`.
   * The task is destroyed before it settles. A rejection not awaited is not reported as unhandled.
   */
  readonly task: Promise<void>
  readonly taskRef: Ref<'task'>
}

const BODY_HIGH_WATER_MARK = 256 * 1024

/**
 * Streams the export of a halted or suspended VM (`GET /export`, or `/export_metadata` with
 * `metadataOnly`), following redirects to the pool member that sees its storage.
 *
 * The body comes in the socket's chunks (64 KiB): give the destination a large `highWaterMark`
 * (1 MiB) so that they are written in batches; with `createWriteStream`'s default (16 KiB) every
 * chunk is its own write, which costs several times the CPU.
 *
 * @example
 * const { body, task } = await exportVm(client, vm, { compression: 'zstd', signal })
 * const file = createWriteStream('vm.xva.zst', { highWaterMark: 1024 * 1024 })
 * await Promise.all([pipeline(body, file, { signal }), task])
 */
export async function exportVm(
  client: XapiClient | TransferClient,
  vm: Ref<'VM'>,
  options: ExportVmOptions = {}
): Promise<ExportVmResult> {
  const o = resolveExportOptions(options)
  const { run, conn, chunked } = await openExport(client, vm, o, { directReads: false })
  const { body, done } = streamBody(run, conn, {
    ...o,
    chunked,
    expectCompression: askedCompression(o),
  })
  const settled = run.conclude(done).then(() => undefined)
  settled.catch((error: unknown) => {
    if (!body.readableEnded) body.destroy(error as Error)
  })
  return { body, task: settled, taskRef: run.task.ref }
}

/**
 * Wires socket → (chunked decoder) → `body`, the verifier looking at each chunk on the way (no
 * stream of its own: one hop less per chunk); `done` resolves once `body` has been fully read.
 */
export function streamBody(
  run: TransferRun,
  conn: Connection,
  options: {
    verify: boolean
    metadataOnly: boolean
    chunked: boolean
    /** Fail at the first bytes unless the archive has this compression. */
    expectCompression?: XvaCompression | undefined
  }
): { body: Readable; done: Promise<void> } {
  const raw = conn.stream
  const expected = run.meter.totalBytes
  const decoder = options.chunked ? new ChunkedDecoder() : undefined
  const source: Readable = decoder ? raw.pipe(decoder) : raw
  const verifier = options.verify
    ? createInFlightVerifier({
        metadataOnly: options.metadataOnly,
        onError: (error) => run.fail(error),
        expectCompression: options.expectCompression,
      })
    : undefined
  if (verifier) run.meter.setFractionSource(() => verifiedFraction(verifier))
  let received = 0
  // The source flows only while neither the body's reader nor the verifier's decompressor is full.
  let bodyFull = false
  let verifierFull = false
  const resume = () => {
    if (!bodyFull && !verifierFull && !run.signal.aborted) source.resume()
  }

  const body = new Readable({
    highWaterMark: BODY_HIGH_WATER_MARK,
    read() {
      bodyFull = false
      resume()
    },
    destroy(error, callback) {
      if (!body.readableEnded) {
        run.fail(
          error ??
            new XapiClientError(
              'XAPI_CLIENT_BODY_DESTROYED',
              'the export body was destroyed before its end'
            )
        )
      }
      callback(error)
    },
  })

  const done = new Promise<void>((resolve, reject) => {
    run.signal.addEventListener(
      'abort',
      () => {
        destroyConnection(conn, !run.over)
        decoder?.destroy()
        verifier?.destroy()
        const reason: unknown = run.signal.reason
        reject(reason)
        // A broken connection waits for the task's verdict (see TransferRun); anything else
        // (abort, stall, verification failure) ends the body now.
        if (!body.destroyed && !body.readableEnded && !isTransportFailure(reason)) {
          body.destroy(reason as Error)
        }
      },
      { once: true }
    )
    body.once('end', () => resolve())
  })
  done.catch(() => {})

  raw.on('data', (chunk: Buffer) => {
    received += chunk.length
    run.meter.addBytes(chunk.length)
  })
  raw.once('end', () => {
    if (expected !== undefined && received < expected) {
      run.fail(
        new XapiTransportError(
          `GET ${describeTarget(conn.target)} ended after ${received} of ${expected} bytes`
        )
      )
    }
  })
  raw.once('close', () => {
    if (!raw.readableEnded) {
      const cause = conn.error
      run.fail(
        cause
          ? wrapSocketError(cause, conn.target)
          : new XapiTransportError(`GET ${describeTarget(conn.target)}: connection closed`)
      )
    }
  })
  decoder?.once('error', (error) => run.fail(error))
  source.on('data', (chunk: Buffer) => {
    if (run.signal.aborted) return
    if (verifier) {
      try {
        if (!verifier.write(chunk)) {
          verifierFull = true
          source.pause()
          void verifier.drained().then(() => {
            verifierFull = false
            resume()
          })
        }
      } catch (error) {
        run.fail(error)
        return
      }
    }
    if (!body.push(chunk)) {
      bodyFull = true
      source.pause()
    }
  })
  source.once('end', () => {
    if (!verifier) {
      if (!run.signal.aborted) body.push(null)
      return
    }
    verifier.end().then(
      () => {
        if (!run.signal.aborted) body.push(null)
      },
      (error: unknown) => run.fail(error)
    )
  })
  source.pause()
  // Any stream of ours paused by backpressure means the consumer of `body` is the one to wait for.
  run.setWaitingOnPeer(() => bodyFull || source.isPaused() || raw.isPaused())
  return { body, done }
}
