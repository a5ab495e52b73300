import { describeError, errorCode } from '../../lib/errors.js'

/** Thrown when an archive fails XVA verification (in flight or on disk). Worth a retry. */
export class XvaVerificationError extends Error {
  override name = 'XvaVerificationError'
  readonly code = 'XVA_VERIFICATION_FAILED'

  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, options)
  }
}

/** A transfer that broke once its body had started flowing. Worth a retry. */
export class TransferBrokenError extends Error {
  override name = 'TransferBrokenError'
  readonly code = 'TRANSFER_BROKEN'

  constructor(cause: unknown) {
    super(describeError(cause), { cause })
  }
}

// Failures of the connection rather than of the VM or of our disk: a new attempt may work.
const TRANSIENT_CODES = new Set([
  'XAPI_CLIENT_TRANSPORT',
  'XAPI_CLIENT_STALLED',
  'XAPI_CLIENT_TIMEOUT',
  'XAPI_CLIENT_PROTOCOL',
  'XAPI_CLIENT_BODY_DESTROYED',
  'XVA_VERIFICATION_FAILED',
  'TRANSFER_BROKEN',
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ERR_STREAM_PREMATURE_CLOSE',
  // xapi's own view of a broken upload/download.
  'IMPORT_ERROR_PREMATURE_EOF',
])

/** Whether a transfer that failed with `error` is worth another attempt. */
export function isRetriable(error: unknown): boolean {
  const code = errorCode(error)
  return code !== undefined && TRANSIENT_CODES.has(code)
}

/** Local file-system failures: the disk is full or unwritable, retrying cannot help. */
export function isLocalFsError(error: unknown): boolean {
  const code = errorCode(error)
  return (
    code !== undefined &&
    ['ENOSPC', 'EDQUOT', 'EROFS', 'EACCES', 'EPERM', 'EIO', 'ENOTDIR', 'EISDIR', 'EFBIG'].includes(
      code
    )
  )
}

/** Exponential backoff with ±20 % jitter: base, 2×base, 4×base… capped at `maxMs`. */
export function backoffMs(attempt: number, baseMs = 1_000, maxMs = 30_000): number {
  const raw = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1))
  return Math.round(raw * (0.8 + Math.random() * 0.4))
}
