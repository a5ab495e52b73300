import { XapiTransportError } from '../errors.js'
import type { Ref } from '@xapi-ops/xapi-formats'
import type { XapiClient } from '../client.js'
import { pinRelearner, unclaimedTaskEnder, type TransferClient } from './client-shape.js'
import { destroyConnection, type Connection } from './http-connection.js'
import type { resolveExportOptions } from './options.js'
import { openRequest } from './request.js'
import { TransferRun } from './run.js'
import { onceMoreIfSessionRefused } from './session-refused.js'
import { actionTarget, describeTarget } from './url.js'

/** An export whose response head said 200: the body is next on `conn`. */
/**
 * `use_compression` as every xapi reads it: `true` is gzip since the beginning (`gzip` came
 * later), `zstd` where supported (else none: the in-flight verifier then says so).
 */
const USE_COMPRESSION = { none: 'false', gzip: 'true', zstd: 'zstd' } as const

export type OpenedExport = {
  readonly run: TransferRun
  readonly conn: Connection
  /** The body is chunked (`Transfer-Encoding: chunked`). */
  readonly chunked: boolean
}

/**
 * Creates the task, sends `GET /export` (or `/export_metadata`) following redirects and reads
 * the response head. On failure the task is ended and the error the caller should see thrown.
 * A session xapi refused (expired since the task was created) gets one more attempt.
 */
export function openExport(
  client: XapiClient | TransferClient,
  vm: Ref<'VM'>,
  o: ReturnType<typeof resolveExportOptions>,
  options: { directReads: boolean }
): Promise<OpenedExport> {
  return onceMoreIfSessionRefused(o.signal, () => openExportOnce(client, vm, o, options))
}

async function openExportOnce(
  client: XapiClient | TransferClient,
  vm: Ref<'VM'>,
  o: ReturnType<typeof resolveExportOptions>,
  options: { directReads: boolean }
): Promise<OpenedExport> {
  if (typeof vm !== 'string' || !vm.startsWith('OpaqueRef:')) {
    throw new TypeError(
      `Expected \`vm\` to be a VM ref (OpaqueRef:…), got ${typeof vm === 'string' ? `\`${vm}\`` : typeof vm}`
    )
  }
  o.signal?.throwIfAborted()
  const task = await client.createTask('Export of VM', vm)
  const full = !o.metadataOnly
  let target
  try {
    target = actionTarget(client.hostUrl(), full ? '/export' : '/export_metadata', {
      session_id: await client.sessionRef(o.signal),
      task_id: task.ref,
      ref: vm,
      use_compression: full ? USE_COMPRESSION[o.compression] : undefined,
      preserve_power_state: full ? String(o.preservePowerState) : undefined,
    })
  } catch (error) {
    await unclaimedTaskEnder(client, task.ref)?.('failure', error).catch(() => {})
    await task.destroy().catch(() => {})
    throw error
  }
  const run = new TransferRun(task, {
    what: `GET ${describeTarget(target)}`,
    signal: o.signal,
    stallTimeoutMs: o.stallTimeoutMs,
    onProgress: o.onProgress,
    // Without the verifier the task's progress is the only completion estimate.
    watchTaskFromStart: o.onProgress !== undefined && !o.verify && full,
    endUnclaimedTask: unclaimedTaskEnder(client, task.ref),
  })
  try {
    const opened = await openRequest((u) => client.agentFor(u), 'GET', target, {}, run.signal, {
      directReads: options.directReads,
      onPinMismatch: pinRelearner(client),
    })
    run.markAnswered(opened.head.status)
    const { conn } = opened
    if (opened.head.status !== 200) {
      destroyConnection(conn)
      // xapi answers 500 and fails the task with the reason (VM_BAD_POWER_STATE, …).
      throw new XapiTransportError(
        `HTTP ${opened.head.status} ${opened.head.reason} from GET ${describeTarget(conn.target)}`,
        { status: opened.head.status }
      )
    }
    const chunked = /chunked/i.test(opened.head.headers.get('transfer-encoding') ?? '')
    const length = opened.head.headers.get('content-length')
    if (length !== undefined && !chunked) run.meter.setTotalBytes(Number(length))
    o.onResponse?.()
    return { run, conn, chunked }
  } catch (error) {
    return await run.abandon(error)
  }
}
