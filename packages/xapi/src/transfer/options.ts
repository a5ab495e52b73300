import { InvalidOptionError } from '../errors.js'
import type { Ref } from '@xapi-ops/xapi-formats'
import type { TransferProgress } from './progress.js'

/** @default 5 minutes: dom0 compressing long runs of zeros can send nothing for minutes. */
export const DEFAULT_STALL_TIMEOUT_MS = 5 * 60_000

/** Options of `exportVm`. */
export type ExportVmOptions = {
  /**
   * Compression of the whole archive (`use_compression`), done by dom0.
   * @default 'none'
   */
  readonly compression?: 'none' | 'gzip' | 'zstd'
  /**
   * Keep a suspended VM suspended (its suspend image is exported); otherwise it is exported as
   * halted.
   * @default false
   */
  readonly preservePowerState?: boolean
  /**
   * Export only `ova.xml` (`/export_metadata`): any power state, no disks, never compressed.
   * @default false
   */
  readonly metadataOnly?: boolean
  readonly signal?: AbortSignal
  /** Called at most every 200 ms, and once at the end with `fraction: 1`. */
  readonly onProgress?: (progress: TransferProgress) => void
  /**
   * Abort with `XAPI_CLIENT_STALLED` when neither bytes nor the task's progress moved for this
   * long (time spent waiting for the consumer of `body` does not count).
   * @default 300_000
   */
  readonly stallTimeoutMs?: number
  /**
   * Verify the archive in flight as xapi's importer would (order, sizes, checksums, clean end):
   * a failure destroys `body` and rejects `task` with the XVA error.
   * @default true
   */
  readonly verify?: boolean
  /**
   * Called once the host answered `200 OK`, before the body: a failure after it is a transfer
   * that broke (worth another attempt), not one the host refused.
   */
  readonly onResponse?: () => void
}

/** Options of `importVm`. */
export type ImportVmOptions = {
  /** The SR for the disks (`sr_id`); without it, the pool's default SR. */
  readonly sr?: Ref<'SR'>
  /**
   * Full restore: keep the VM's UUID and the VIFs' MACs, replace an older halted VM of that UUID.
   * @default false
   */
  readonly restore?: boolean
  /**
   * Ignore checksum mismatches and keep what was created when the import fails.
   * @default false
   */
  readonly force?: boolean
  /**
   * Length of the archive in bytes, sent as `Content-Length`. Without it the body is
   * close-delimited (HTTP/1.0 style: it ends when the connection is half-closed), never chunked.
   */
  readonly length?: number
  readonly signal?: AbortSignal
  /** Called at most every 200 ms, and once at the end with `fraction: 1`. */
  readonly onProgress?: (progress: TransferProgress) => void
  /**
   * Abort with `XAPI_CLIENT_STALLED` when neither bytes nor the task's progress moved for this
   * long (time spent waiting for `source` does not count).
   * @default 300_000
   */
  readonly stallTimeoutMs?: number
  /**
   * Called with the import's task before the upload starts (again with a new task if xapi
   * refused the session and the import starts over). xapi marks what the import creates with it
   * (`other_config:import_task` of the VMs and of the networks it had to make), so a caller that
   * records it can find them after a crash. A rejection ends the import with its error.
   */
  readonly onTask?: (task: Ref<'task'>) => Promise<void> | void
}

const COMPRESSIONS = ['none', 'gzip', 'zstd'] as const

function describe(v: unknown): string {
  if (typeof v === 'string') return `\`${v}\` (string)`
  if (v === null) return 'null'
  if (typeof v === 'object') return Array.isArray(v) ? 'an array' : 'an object'
  return `\`${String(v)}\` (${typeof v})`
}

function checkBoolean(name: string, value: unknown): boolean {
  if (value === undefined) return false
  if (typeof value !== 'boolean') {
    throw new InvalidOptionError(
      name,
      `Expected \`${name}\` to be a boolean, got ${describe(value)}`
    )
  }
  return value
}

function checkFunction<F extends (...args: never[]) => unknown>(
  name: string,
  value: F | undefined
): F | undefined {
  if (value !== undefined && typeof value !== 'function') {
    throw new InvalidOptionError(
      name,
      `Expected \`${name}\` to be a function, got ${describe(value)}`
    )
  }
  return value
}

function checkCommon(options: {
  signal?: unknown
  onProgress?: unknown
  stallTimeoutMs?: unknown
}): number {
  const { signal, onProgress, stallTimeoutMs = DEFAULT_STALL_TIMEOUT_MS } = options
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new InvalidOptionError(
      'signal',
      `Expected \`signal\` to be an AbortSignal, got ${describe(signal)}`
    )
  }
  if (onProgress !== undefined && typeof onProgress !== 'function') {
    throw new InvalidOptionError(
      'onProgress',
      `Expected \`onProgress\` to be a function, got ${describe(onProgress)}`
    )
  }
  if (
    typeof stallTimeoutMs !== 'number' ||
    !(stallTimeoutMs > 0) ||
    !Number.isFinite(stallTimeoutMs)
  ) {
    throw new InvalidOptionError(
      'stallTimeoutMs',
      `Expected \`stallTimeoutMs\` to be a positive finite number, got ${describe(stallTimeoutMs)}`
    )
  }
  return stallTimeoutMs
}

/** Validates `exportVm` options and applies the defaults. */
export function resolveExportOptions(options: ExportVmOptions) {
  const compression = options.compression ?? 'none'
  if (!COMPRESSIONS.includes(compression)) {
    throw new InvalidOptionError(
      'compression',
      `Expected \`compression\` to be one of ${COMPRESSIONS.join(', ')}, got ${describe(compression)}`
    )
  }
  return {
    compression,
    preservePowerState: checkBoolean('preservePowerState', options.preservePowerState),
    metadataOnly: checkBoolean('metadataOnly', options.metadataOnly),
    verify: options.verify === undefined ? true : checkBoolean('verify', options.verify),
    stallTimeoutMs: checkCommon(options),
    signal: options.signal,
    onProgress: options.onProgress,
    onResponse: checkFunction('onResponse', options.onResponse),
  }
}

/** Validates `importVm` options and applies the defaults. */
export function resolveImportOptions(options: ImportVmOptions) {
  const { sr, length } = options
  if (sr !== undefined && (typeof sr !== 'string' || !sr.startsWith('OpaqueRef:'))) {
    throw new InvalidOptionError(
      'sr',
      `Expected \`sr\` to be an SR ref (OpaqueRef:…), got ${describe(sr)}`
    )
  }
  if (length !== undefined && (!Number.isSafeInteger(length) || length < 0)) {
    throw new InvalidOptionError(
      'length',
      `Expected \`length\` to be a non-negative integer, got ${describe(length)}`
    )
  }
  return {
    sr,
    length,
    restore: checkBoolean('restore', options.restore),
    force: checkBoolean('force', options.force),
    stallTimeoutMs: checkCommon(options),
    signal: options.signal,
    onProgress: options.onProgress,
    onTask: options.onTask,
  }
}
