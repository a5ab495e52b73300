import { statfs } from 'node:fs/promises'
import { formatBytes } from '../transfer/format.js'

/** Thrown when `--out` lacks the room for an export. Not worth a retry. */
export class InsufficientSpaceError extends Error {
  override name = 'InsufficientSpaceError'
  readonly code = 'INSUFFICIENT_SPACE'
}

/** Bytes an unprivileged writer may still use in the file system of `dir`. */
export async function freeBytes(dir: string): Promise<number> {
  const s = await statfs(dir)
  return Number(s.bavail) * Number(s.bsize)
}

/**
 * Space promised to exports in flight, so that two exports checked at the same time do not
 * both count on the same free bytes. Each export's claim shrinks as its file grows.
 */
export class SpaceBudget {
  readonly #claims = new Map<string, { estimate: number; written: number }>()

  claim(id: string, estimate: number): void {
    this.#claims.set(id, { estimate, written: 0 })
  }

  written(id: string, bytes: number): void {
    const c = this.#claims.get(id)
    if (c) c.written = bytes
  }

  release(id: string): void {
    this.#claims.delete(id)
  }

  /** Bytes still to come from the other exports in flight. */
  pendingExcept(id: string): number {
    let sum = 0
    for (const [key, c] of this.#claims) if (key !== id) sum += Math.max(0, c.estimate - c.written)
    return sum
  }
}

/**
 * Checks that `dir` has room for `needed` bytes on top of what the other exports in flight
 * will still write; throws {@link InsufficientSpaceError} otherwise.
 */
export async function checkFreeSpace(
  dir: string,
  needed: number,
  budget: SpaceBudget,
  id: string
): Promise<void> {
  const free = await freeBytes(dir)
  const pending = budget.pendingExcept(id)
  if (free - pending < needed) {
    const others =
      pending > 0 ? ` (${formatBytes(pending)} of it promised to exports in flight)` : ''
    throw new InsufficientSpaceError(
      `not enough space in ${dir}: the export needs about ${formatBytes(needed)} (disks' physical utilisation), ${formatBytes(free)} free${others}`
    )
  }
}
