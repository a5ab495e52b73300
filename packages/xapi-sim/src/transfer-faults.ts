import { setTimeout as delay } from 'node:timers/promises'

/** Which transfers a fault applies to. */
export type TransferKind = 'export' | 'import'
type On = TransferKind | 'both'

type Drop = { bytes: number; always: boolean; on: On }
type Stall = { seconds: number; afterBytes: number; always: boolean; on: On; keepProgress: boolean }
type Corrupt = { disk: number; block: number; times: number }
type Redirect = { to: string; times: number; on: On }

/** The faults one transfer runs with (taken when it starts). */
export type TransferPlan = {
  dropAfterBytes?: number
  stall?: { seconds: number; afterBytes: number; keepProgress: boolean }
  /** Bytes per second of the response body (export) or of reading the request body (import). */
  bytesPerSec?: number
  /** Blocks whose checksum entry is written wrong (export). */
  corrupt: (diskIndex: number, blockIndex: number) => boolean
}

const applies = (on: On, kind: TransferKind): boolean => on === 'both' || on === kind

/**
 * Faults of `/export` and `/import` transfers (`sim.faults.transfer`). Durations are real time
 * (not scaled by `timeScale`), since they exercise the client's own timers. `clear()` (or
 * `sim.faults.clear()`) removes them all.
 */
export class TransferFaults {
  #drops: Drop[] = []
  #stalls: Stall[] = []
  #corrupt: Corrupt[] = []
  #redirects: Redirect[] = []
  #throttle: { bytesPerSec: number; on: On } | undefined
  #slowReader: number | undefined
  #noZstd = false

  /** Closes the connection after `n` body bytes (next transfer only, unless `always`). */
  dropAfterBytes(n: number, opts: { always?: boolean; on?: On } = {}): void {
    if (!(n >= 0)) throw new TypeError(`dropAfterBytes: expected a byte count, got ${n}`)
    this.#drops.push({ bytes: n, always: opts.always ?? false, on: opts.on ?? 'both' })
  }

  /**
   * Sends (or reads) nothing for `seconds` once `afterBytes` body bytes went through (next transfer
   * only, unless `always`). `keepProgress`: the task's progress keeps moving meanwhile, like dom0
   * compressing a long run of zeros.
   */
  stallSeconds(
    seconds: number,
    opts: { afterBytes?: number; always?: boolean; on?: On; keepProgress?: boolean } = {}
  ): void {
    this.#stalls.push({
      seconds,
      afterBytes: opts.afterBytes ?? 0,
      always: opts.always ?? false,
      on: opts.on ?? 'both',
      keepProgress: opts.keepProgress ?? false,
    })
  }

  /** Writes a wrong checksum for block `blockIndex` of the `diskIndex`-th streamed disk (exports). */
  corruptBlock(diskIndex: number, blockIndex: number, opts: { times?: number } = {}): void {
    this.#corrupt.push({ disk: diskIndex, block: blockIndex, times: opts.times ?? Infinity })
  }

  /** Limits transfer bodies to `n` bytes/s (null: no limit). */
  throttleBytesPerSec(n: number | null, opts: { on?: On } = {}): void {
    this.#throttle = n === null ? undefined : { bytesPerSec: n, on: opts.on ?? 'both' }
  }

  /** The importer reads the request body at `n` bytes/s (null: full speed). */
  slowImportReader(n: number | null): void {
    this.#slowReader = n ?? undefined
  }

  /** Answers `302 Found` to host `to` of the same pool (`times` requests, default forever). */
  redirect(opts: { to: string; times?: number; on?: On }): void {
    this.#redirects.push({ to: opts.to, times: opts.times ?? Infinity, on: opts.on ?? 'both' })
  }

  /**
   * As an xapi release without zstd: `use_compression=zstd` reads as none, so exports come
   * uncompressed, and a zstd upload fails with IMPORT_ERROR (null or false: zstd again).
   */
  withoutZstd(on: boolean | null = true): void {
    this.#noZstd = on === true
  }

  /** @internal Whether `use_compression=zstd` is unknown (see withoutZstd). */
  get ignoresZstd(): boolean {
    return this.#noZstd
  }

  clear(): void {
    this.#noZstd = false
    this.#drops = []
    this.#stalls = []
    this.#corrupt = []
    this.#redirects = []
    this.#throttle = undefined
    this.#slowReader = undefined
  }

  /** @internal The host name to redirect to, if a redirect applies (consumes one `times`). */
  takeRedirect(kind: TransferKind, receivingHost: string): string | undefined {
    const r = this.#redirects.find((x) => applies(x.on, kind) && x.to !== receivingHost)
    if (!r) return undefined
    if (--r.times <= 0) this.#redirects.splice(this.#redirects.indexOf(r), 1)
    return r.to
  }

  /** @internal The faults of a transfer that starts now (consumes one-shot faults). */
  plan(kind: TransferKind): TransferPlan {
    const plan: TransferPlan = { corrupt: () => false }
    const drop = this.#drops.find((d) => applies(d.on, kind))
    if (drop) {
      plan.dropAfterBytes = drop.bytes
      if (!drop.always) this.#drops.splice(this.#drops.indexOf(drop), 1)
    }
    const stall = this.#stalls.find((s) => applies(s.on, kind))
    if (stall) {
      plan.stall = {
        seconds: stall.seconds,
        afterBytes: stall.afterBytes,
        keepProgress: stall.keepProgress,
      }
      if (!stall.always) this.#stalls.splice(this.#stalls.indexOf(stall), 1)
    }
    const rate = kind === 'import' && this.#slowReader !== undefined ? this.#slowReader : undefined
    const throttle =
      this.#throttle && applies(this.#throttle.on, kind) ? this.#throttle.bytesPerSec : undefined
    const limit = Math.min(rate ?? Infinity, throttle ?? Infinity)
    if (limit !== Infinity) plan.bytesPerSec = limit
    if (kind === 'export' && this.#corrupt.length > 0) {
      const hits = this.#corrupt.filter((c) => c.times > 0)
      for (const c of hits) c.times--
      this.#corrupt = this.#corrupt.filter((c) => c.times > 0)
      plan.corrupt = (d, b) => hits.some((c) => c.disk === d && c.block === b)
    }
    return plan
  }
}

/** Raised inside a transfer when `dropAfterBytes` cuts it. */
export class TransferDropped extends Error {
  override name = 'TransferDropped'
}

/**
 * Applies a plan's drop, stall and throttle to a byte stream: yields the same bytes (split where
 * needed), pausing for stalls and pacing; after exactly `dropAfterBytes` bytes it throws
 * `TransferDropped`. `onStallTick` runs every second of a `keepProgress` stall.
 */
export async function* applyTransferFaults(
  plan: TransferPlan,
  source: AsyncIterable<Buffer>,
  opts: { signal?: AbortSignal; onStallTick?: () => void } = {}
): AsyncGenerator<Buffer> {
  const sleep = (ms: number) => delay(ms, undefined, opts.signal ? { signal: opts.signal } : {})
  const dropped = (n: number) =>
    new TransferDropped(`transfer fault: connection dropped after ${n} bytes`)
  let bytes = 0
  let stalled = plan.stall === undefined
  const started = Date.now()
  if (plan.dropAfterBytes === 0) throw dropped(0)
  for await (let c of source) {
    while (c.length > 0) {
      if (!stalled && bytes >= plan.stall!.afterBytes) {
        stalled = true
        const until = Date.now() + plan.stall!.seconds * 1000
        while (Date.now() < until) {
          await sleep(Math.min(1000, until - Date.now()))
          if (plan.stall!.keepProgress) opts.onStallTick?.()
        }
      }
      let n = c.length
      if (plan.dropAfterBytes !== undefined) n = Math.min(n, plan.dropAfterBytes - bytes)
      if (!stalled) n = Math.min(n, plan.stall!.afterBytes - bytes)
      if (plan.bytesPerSec !== undefined)
        n = Math.min(n, Math.max(1024, Math.ceil(plan.bytesPerSec / 20)))
      yield c.subarray(0, n)
      bytes += n
      c = c.subarray(n)
      if (plan.dropAfterBytes !== undefined && bytes >= plan.dropAfterBytes) throw dropped(bytes)
      if (plan.bytesPerSec !== undefined) {
        const wait = started + (bytes / plan.bytesPerSec) * 1000 - Date.now()
        if (wait > 0) await sleep(wait)
      }
    }
  }
}
