import { XapiTransportError } from '../errors.js'
import type { XvaCompression } from '@xapi-ops/xapi-formats'
import type { OpenedExport } from './export-open.js'
import { destroyConnection, wrapSocketError } from './http-connection.js'
import { describeTarget } from './url.js'
import { createInFlightVerifier, verifiedFraction } from './verify.js'

/** What {@link readExportInPlace} hands each read to, and how it pauses the socket. */
export type InPlaceConsumer = {
  /** Where the next read may go (see `DirectReads.target`); else the connection's read ring. */
  readonly target?: () => Uint8Array | undefined
  /** A read's bytes, after the verifier saw them; `placed`: they lie in the last `target()`. */
  readonly onData: (view: Buffer, placed: boolean, flow: ExportFlow) => void
}

/**
 * Pauses the export socket until every reason given is released. Hold it for `'peer'` while
 * where the bytes go is full: the stall watchdog then waits for that side, not for xapi.
 */
export type ExportFlow = {
  hold(reason: string): void
  release(reason: string): void
}

/**
 * Reads an export's body in place (see `DirectReads`): each read goes to the in-flight verifier
 * (with `verify`) and then to `consumer.onData`, which may hold the socket while it is full.
 * Resolves once the body ended (with the announced length) and verified; on any failure the run
 * fails and the promise rejects with its reason.
 */
export function readExportInPlace(
  exp: OpenedExport,
  options: {
    verify: boolean
    metadataOnly: boolean
    compressed: boolean
    /** Fail at the first bytes unless the archive has this compression. */
    expectCompression?: XvaCompression | undefined
  },
  consumer: InPlaceConsumer
): Promise<void> {
  const { run, conn } = exp
  if (run.signal.aborted) return Promise.reject(run.signal.reason as Error)
  const direct = conn.direct!
  const raw = conn.raw
  const expected = run.meter.totalBytes
  const verifier = options.verify
    ? createInFlightVerifier({
        metadataOnly: options.metadataOnly,
        onError: (e) => run.fail(e),
        expectCompression: options.expectCompression,
      })
    : undefined
  if (verifier) run.meter.setFractionSource(() => verifiedFraction(verifier))
  // A decompressor keeps what it is given until it gets to it: give it copies.
  const copyForVerifier = options.compressed && !options.metadataOnly
  const holds = new Set<string>()
  const flow: ExportFlow = {
    hold(reason) {
      holds.add(reason)
      raw.pause()
    },
    release(reason) {
      holds.delete(reason)
      if (holds.size === 0 && !run.signal.aborted) raw.resume()
    },
  }
  run.setWaitingOnPeer(() => holds.has('peer'))
  let received = 0

  return new Promise<void>((resolve, reject) => {
    const take = (view: Buffer, placed: boolean) => {
      if (run.signal.aborted) return
      received += view.length
      run.meter.addBytes(view.length)
      if (verifier) {
        try {
          if (!verifier.write(copyForVerifier ? Buffer.from(view) : view)) {
            flow.hold('verifier')
            void verifier.drained().then(() => flow.release('verifier'))
          }
        } catch (error) {
          run.fail(error)
          return
        }
      }
      consumer.onData(view, placed, flow)
    }
    run.signal.addEventListener(
      'abort',
      () => {
        direct.onData = direct.target = undefined
        destroyConnection(conn, !run.over)
        verifier?.destroy()
        reject(run.signal.reason)
      },
      { once: true }
    )
    raw.once('end', () => {
      if (expected !== undefined && received < expected) {
        run.fail(
          new XapiTransportError(
            `GET ${describeTarget(conn.target)} ended after ${received} of ${expected} bytes`
          )
        )
        return
      }
      if (!verifier) return resolve()
      verifier.end().then(
        () => resolve(),
        (error: unknown) => run.fail(error)
      )
    })
    raw.once('close', () => {
      if (raw.readableEnded) return
      const cause = conn.error
      run.fail(
        cause
          ? wrapSocketError(cause, conn.target)
          : new XapiTransportError(`GET ${describeTarget(conn.target)}: connection closed`)
      )
    })
    direct.onData = take
    direct.target = consumer.target
    const pending = direct.pending
    direct.pending = undefined
    if (pending) take(pending, false)
    if (holds.size === 0 && !run.signal.aborted) raw.resume()
  })
}
