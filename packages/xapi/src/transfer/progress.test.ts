import { afterEach, describe, expect, it, vi } from 'vitest'
import { TransferMeter, type TransferProgress } from './progress.js'

function meter(totalBytes?: number) {
  const events: TransferProgress[] = []
  const errors: unknown[] = []
  const m = new TransferMeter({
    totalBytes,
    onProgress: (p) => events.push(p),
    onError: (e) => errors.push(e),
  })
  return { m, events, errors }
}

afterEach(() => {
  vi.useRealTimers()
})

describe('TransferMeter', () => {
  it('zero-length total: fraction 0 then 1, never NaN', () => {
    const { m, events } = meter(0)
    m.setTaskProgress(0)
    m.complete()
    expect(events.map((e) => e.fraction)).toEqual([0, 1])
    expect(events.every((e) => Number.isFinite(e.rateBytesPerSec))).toBe(true)
  })

  it('bytes over a known total; the last byte is reported at once', () => {
    const { m, events } = meter(10)
    m.addBytes(4)
    m.addBytes(6)
    expect(events.at(-1)).toMatchObject({ bytes: 10, totalBytes: 10, fraction: 1 })
  })

  it('without a total: the task progress or another estimate, whichever is ahead, monotonic', () => {
    const { m, events } = meter()
    let verified = 0.5
    m.setFractionSource(() => verified)
    m.setTaskProgress(0.2)
    expect(events.at(-1)).toMatchObject({ fraction: 0.5, taskProgress: 0.2 })
    verified = 0.1
    m.complete()
    expect(events.map((e) => e.fraction)).toEqual([0.5, 1])
  })

  it('task progress that does not move is no sign of life', () => {
    vi.useFakeTimers()
    const { m } = meter()
    m.setTaskProgress(0.3)
    const before = m.lastActivity
    vi.advanceTimersByTime(1_000)
    m.setTaskProgress(0.3)
    expect(m.lastActivity).toBe(before)
    m.setTaskProgress(0.4)
    expect(m.lastActivity).toBeGreaterThan(before)
  })

  it('hands what onProgress throws to onError', () => {
    const boom = new Error('progress bar broke')
    const errors: unknown[] = []
    const m = new TransferMeter({
      onProgress: () => {
        throw boom
      },
      onError: (e) => errors.push(e),
    })
    m.complete()
    expect(errors).toEqual([boom])
  })
})
