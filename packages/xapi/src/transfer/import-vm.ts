import type { Readable } from 'node:stream'
import { XapiClientError, XapiTransportError } from '../errors.js'
import type { Ref } from '@xapi-ops/xapi-formats'
import { chunksOf } from './chunks.js'
import { decodeVmRefs } from './import-result.js'
import { pinRelearner, unclaimedTaskEnder, type TransferClient } from './client-shape.js'
import type { XapiClient } from '../client.js'
import { destroyConnection, wrapSocketError, type Connection } from './http-connection.js'
import { resolveImportOptions, type ImportVmOptions } from './options.js'
import { openRequest } from './request.js'
import { TransferRun } from './run.js'
import { onceMoreIfSessionRefused } from './session-refused.js'
import { actionTarget, describeTarget, type Target } from './url.js'

/**
 * Imports an XVA archive (`PUT /import`, plain, gzip or zstd: xapi sniffs it) and resolves with
 * the refs of the new VMs. The request head is sent first and the body only after xapi's answer
 * (200, or a 302 to the pool member that sees the SR, followed). `source` is consumed; on failure
 * it is destroyed (an `exportVm` body then cancels its export).
 *
 * Read a file in large chunks (`highWaterMark: 1 MiB`): with the 64 KiB default every chunk is its
 * own read and socket write, about twice the CPU.
 *
 * @example
 * const { size } = await stat(file)
 * const source = createReadStream(file, { highWaterMark: 1024 * 1024 })
 * const [vm] = await importVm(client, source, { sr, length: size, signal })
 */
export async function importVm(
  client: XapiClient | TransferClient,
  source: Readable | AsyncIterable<Buffer>,
  options: ImportVmOptions = {}
): Promise<Ref<'VM'>[]> {
  try {
    if (typeof (source as Partial<AsyncIterable<Buffer>>)?.[Symbol.asyncIterator] !== 'function') {
      throw new TypeError('Expected `source` to be a Readable or an AsyncIterable of Buffers')
    }
    const o = resolveImportOptions(options)
    const { run, conn } = await openImport(client, o)
    const result = await run.conclude(sendBody(run, conn, source, o.length))
    return decodeVmRefs(result)
  } catch (error) {
    destroySource(source)
    throw error
  }
}

/** Creates the import's task and its `TransferRun`; `target` is the `PUT /import` to send. */
export async function startImport(
  client: XapiClient | TransferClient,
  o: ReturnType<typeof resolveImportOptions>
): Promise<{ run: TransferRun; target: Target }> {
  o.signal?.throwIfAborted()
  const task = await client.createTask('Import of VM')
  let target: Target
  try {
    await o.onTask?.(task.ref)
    target = actionTarget(client.hostUrl(), '/import', {
      session_id: await client.sessionRef(o.signal),
      task_id: task.ref,
      restore: String(o.restore),
      force: String(o.force),
      sr_id: o.sr,
    })
  } catch (error) {
    await unclaimedTaskEnder(client, task.ref)?.('failure', error).catch(() => {})
    await task.destroy().catch(() => {})
    throw error
  }
  const run = new TransferRun(task, {
    what: `PUT ${describeTarget(target)}`,
    signal: o.signal,
    stallTimeoutMs: o.stallTimeoutMs,
    totalBytes: o.length,
    onProgress: o.onProgress,
    // Without a length the task's progress is the only completion estimate.
    watchTaskFromStart: o.onProgress !== undefined && o.length === undefined,
    endUnclaimedTask: unclaimedTaskEnder(client, task.ref),
  })
  return { run, target }
}

/**
 * `startImport` and `openUpload`: the import's task and the connection xapi answered 200 on,
 * ready for the body. On failure the task is ended and the error the caller should see thrown;
 * a session xapi refused (expired since the task was created) gets one more attempt.
 */
export function openImport(
  client: XapiClient | TransferClient,
  o: ReturnType<typeof resolveImportOptions>
): Promise<{ run: TransferRun; conn: Connection }> {
  return onceMoreIfSessionRefused(o.signal, async () => {
    const { run, target } = await startImport(client, o)
    try {
      return { run, conn: await openUpload(run, client, target, o.length) }
    } catch (error) {
      return await run.abandon(error)
    }
  })
}

/**
 * Sends the head of the `PUT`, follows redirects and checks xapi's answer; resolves with the
 * connection to send the body on (closed on abort).
 */
export async function openUpload(
  run: TransferRun,
  client: TransferClient,
  target: Target,
  length: number | undefined
): Promise<Connection> {
  const headers: Record<string, string> = { Connection: 'close' }
  if (length !== undefined) headers['Content-Length'] = String(length)
  const { conn, head } = await openRequest(
    (u) => client.agentFor(u),
    'PUT',
    target,
    headers,
    run.signal,
    { onPinMismatch: pinRelearner(client) }
  )
  run.markAnswered(head.status)
  run.signal.addEventListener('abort', () => destroyConnection(conn, !run.over), {
    once: true,
  })
  if (head.status !== 200) {
    destroyConnection(conn)
    // 403 for a Transfer-Encoding, 500/400 for DEFAULT_SR_NOT_FOUND…: the task says which.
    throw new XapiTransportError(
      `HTTP ${head.status} ${head.reason} from PUT ${describeTarget(conn.target)}`,
      { status: head.status }
    )
  }
  // Everything after the 200 is reported through the task; drain what the server may still send.
  conn.stream.on('data', () => {})
  conn.stream.resume()
  return conn
}

async function sendBody(
  run: TransferRun,
  conn: Connection,
  source: AsyncIterable<Buffer>,
  length: number | undefined
): Promise<void> {
  const { stream } = conn
  const iterator = chunksOf(source)[Symbol.asyncIterator]()
  let waitingOnSource = true
  run.setWaitingOnPeer(() => waitingOnSource)
  let sent = 0
  try {
    for (;;) {
      waitingOnSource = true
      const next = await unlessAborted(iterator.next(), run.signal)
      waitingOnSource = false
      if (next.done) break
      const chunk = toBuffer(next.value)
      if (length !== undefined && sent + chunk.length > length) {
        throw lengthMismatch(`more than the ${length} bytes given as \`length\``)
      }
      checkWritable(conn)
      sent += chunk.length
      if (!stream.write(chunk)) await drained(conn, run.signal)
      run.meter.addBytes(chunk.length)
    }
  } catch (error) {
    void Promise.resolve(iterator.return?.()).catch(() => {})
    throw error
  }
  if (length !== undefined && sent !== length) {
    throw lengthMismatch(`${sent} bytes where \`length\` said ${length}`)
  }
  checkWritable(conn)
  // Half-close: for a close-delimited body this FIN is the end of the archive.
  stream.end()
}

function lengthMismatch(what: string): XapiClientError {
  return new XapiClientError('XAPI_CLIENT_LENGTH_MISMATCH', `import source gave ${what}`)
}

export function checkWritable(conn: Connection): void {
  const { stream } = conn
  if (conn.error) throw wrapSocketError(conn.error, conn.target)
  if (stream.destroyed || stream.writableEnded || !stream.writable) {
    throw new XapiTransportError(
      `PUT ${describeTarget(conn.target)}: connection closed by the server`
    )
  }
}

/**
 * `promise`, or a rejection with `signal.reason` if it aborts first. Per call listeners, removed
 * on settlement: racing every chunk against one long-lived promise would leak a reaction per chunk.
 */
function unlessAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error)
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error)
    signal.addEventListener('abort', onAbort, { once: true })
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort)
        resolve(value)
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort)
        reject(error as Error)
      }
    )
  })
}

function drained(conn: Connection, signal: AbortSignal): Promise<void> {
  const { stream } = conn
  if (signal.aborted) return Promise.reject(signal.reason as Error)
  return new Promise<void>((resolve, reject) => {
    const cleanup = () => {
      stream.off('drain', onDrain)
      stream.off('close', onClose)
      stream.off('error', onError)
      signal.removeEventListener('abort', onAbort)
    }
    const onDrain = () => {
      cleanup()
      resolve()
    }
    const onClose = () => {
      cleanup()
      reject(
        conn.error
          ? wrapSocketError(conn.error, conn.target)
          : new XapiTransportError(
              `PUT ${describeTarget(conn.target)}: connection closed by the server`
            )
      )
    }
    const onError = (error: Error) => {
      cleanup()
      reject(wrapSocketError(error, conn.target))
    }
    const onAbort = () => {
      cleanup()
      reject(signal.reason as Error)
    }
    stream.once('drain', onDrain)
    stream.once('close', onClose)
    stream.once('error', onError)
    signal.addEventListener('abort', onAbort, { once: true })
  })
}

function toBuffer(chunk: unknown): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk
  if (chunk instanceof Uint8Array)
    return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
  throw new TypeError(`Expected the import source to yield Buffers, got ${typeof chunk}`)
}

/** Without an error: an 'error' event nobody listens to would crash the process. */
function destroySource(source: unknown): void {
  const s = source as Partial<Readable> | null
  if (typeof s?.destroy === 'function' && s.destroyed === false) s.destroy()
}
