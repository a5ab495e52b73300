import { startSimulator, type Simulator } from '@xapi-ops/xapi-sim'
import { test as base } from 'vitest'
import type { ClientOptions } from '../../src/index.js'

/** A fresh simulator per test (fast virtual time) and the options to reach its first pool. */
export const test = base.extend<{ sim: Simulator; opts: ClientOptions }>({
  // eslint-disable-next-line no-empty-pattern
  sim: async ({}, use) => {
    const sim = await startSimulator({ seed: 'small', timeScale: 0.01 })
    await use(sim)
    await sim.close()
  },
  opts: async ({ sim }, use) => {
    await use({ url: sim.pools[0]!.masterUrl, user: sim.user, password: sim.password })
  },
})
