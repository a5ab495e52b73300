import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
/** Median of a non-empty list. */
export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

/** Times `fn` `runs` times after `warmup` runs; returns the median in ms. */
export async function timeMedian(fn: () => Promise<unknown>, runs: number, warmup = 1) {
  for (let i = 0; i < warmup; i++) await fn()
  const times: number[] = []
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now()
    await fn()
    times.push(performance.now() - t0)
  }
  return median(times)
}

/**
 * A full garbage collection, for contenders sharing this process: each timed run then starts
 * from a collected heap instead of paying for the other's garbage.
 */
const collect: () => void = (() => {
  setFlagsFromString('--expose-gc')
  return runInNewContext('gc') as () => void
})()

/**
 * Times two contenders alternately (A B A B …) so that noise on the shared machine hits both
 * alike, each run after a full collection (outside the timing); returns the median of each in ms.
 */
export async function timePair(
  a: () => Promise<unknown>,
  b: () => Promise<unknown>,
  runs: number
): Promise<[number, number]> {
  await a()
  await b()
  const ta: number[] = []
  const tb: number[] = []
  for (let i = 0; i < runs; i++) {
    for (const [fn, list] of i % 2
      ? ([
          [b, tb],
          [a, ta],
        ] as const)
      : ([
          [a, ta],
          [b, tb],
        ] as const)) {
      collect()
      const t0 = performance.now()
      await fn()
      list.push(performance.now() - t0)
    }
  }
  return [median(ta), median(tb)]
}
