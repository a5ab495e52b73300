import { availableParallelism } from 'node:os'
import { CompressStream } from 'zstd-napi'
import { InvalidOptionError } from '../errors.js'

/**
 * Compression done on this side of an export to a file (`exportVmToFile`): dom0 sends the archive
 * uncompressed, this process compresses it with zstd on its own cores. The file is what
 * `use_compression=zstd` would give (`.xva.zst`, importable by xapi) and dom0 spends no CPU on it.
 */
export type ClientCompression = {
  readonly codec: 'zstd'
  /** zstd level, 1-19. @default 3 */
  readonly level?: number
  /** zstd worker threads. @default the cores this process may use */
  readonly threads?: number
}

/** Validates `clientCompression` and applies the defaults. */
export function resolveClientCompression(
  value: ClientCompression | undefined,
  hostCompression: string
): Required<ClientCompression> | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'object' || value === null || value.codec !== 'zstd') {
    throw new InvalidOptionError(
      'clientCompression',
      "Expected `clientCompression` to be `{ codec: 'zstd', level?, threads? }`"
    )
  }
  if (hostCompression !== 'none') {
    throw new InvalidOptionError(
      'clientCompression',
      '`clientCompression` needs `compression: "none"`: the host sends the archive as it is'
    )
  }
  const level = value.level ?? 3
  const threads = value.threads ?? availableParallelism()
  if (!Number.isInteger(level) || level < 1 || level > 19) {
    throw new InvalidOptionError(
      'clientCompression',
      `Expected \`clientCompression.level\` to be an integer from 1 to 19, got ${String(level)}`
    )
  }
  if (!Number.isInteger(threads) || threads < 1) {
    throw new InvalidOptionError(
      'clientCompression',
      `Expected \`clientCompression.threads\` to be a positive integer, got ${String(threads)}`
    )
  }
  return { codec: 'zstd', level, threads }
}

/** A zstd compressor for `c` (one frame, with its checksum, as `zstd` writes). */
export function createClientCompressor(c: Required<ClientCompression>): CompressStream {
  return new CompressStream({
    compressionLevel: c.level,
    nbWorkers: c.threads > 1 ? c.threads : 0,
    checksumFlag: true,
  })
}
