import { describe, expect, test } from 'vitest'
import { sleep } from '../src/lib/sleep.js'

describe('sleep', () => {
  test('resolves after the time', async () => {
    const t0 = performance.now()
    await sleep(20, new AbortController().signal)
    expect(performance.now() - t0).toBeGreaterThanOrEqual(15)
  })

  test('rejects with the reason itself when aborted meanwhile', async () => {
    const controller = new AbortController()
    const reason = new Error('deadline')
    const slept = sleep(60_000, controller.signal)
    setTimeout(() => controller.abort(reason), 5)
    await expect(slept).rejects.toBe(reason)
  })

  test('an aborted signal throws at once', () => {
    const reason = new Error('interrupted')
    expect(() => sleep(10, AbortSignal.abort(reason))).toThrow(reason)
  })
})
