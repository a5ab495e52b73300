import { describe, expect } from 'vitest'
import { connect, type Ref, type XapiError } from '../src/index.js'
import { test } from './helpers/sim.js'

describe.each(['json-rpc', 'xml-rpc'] as const)(
  'callAsync on VM operations over %s',
  (transport) => {
    test('clean_shutdown: progress, result, state, cleanup; then VM_BAD_POWER_STATE', async ({
      sim,
      opts,
    }) => {
      await using xapi = await connect({ ...opts, transport })
      const vms = await xapi.getAllRecords('VM')
      const [vm] = [...vms].find(([, r]) => r.power_state === 'Running' && !r.is_control_domain)!
      const progress: number[] = []
      expect(
        await xapi.callAsync('VM.clean_shutdown', [vm], { onProgress: (p) => progress.push(p) })
      ).toBe('')
      expect(await xapi.call('VM.get_power_state', vm)).toBe('Halted')
      expect(progress.length).toBeGreaterThan(0)
      expect(progress).toEqual([...progress].sort((a, b) => a - b))
      const error = (await xapi
        .callAsync('VM.clean_shutdown', [vm])
        .catch((e: unknown) => e)) as XapiError
      expect(error).toMatchObject({
        code: 'VM_BAD_POWER_STATE',
        params: [vm, expect.any(String), 'halted'],
      })
      expect(error.task).toMatch(/^OpaqueRef:/)
      const tasks = await xapi.call<Ref<'task'>[]>('task.get_all')
      expect(tasks).not.toContain(error.task)
      expect(sim.calls.filter((c) => c.method === 'task.destroy')).toHaveLength(2)
    })

    test('aborting callAsync cancels the XAPI task and rejects with the reason', async ({
      sim,
      opts,
    }) => {
      await using xapi = await connect({ ...opts, transport })
      const vms = await xapi.getAllRecords('VM')
      const [vm, record] = [...vms].find(
        ([, r]) => r.power_state === 'Running' && !r.is_control_domain
      )!
      sim.faults.stubbornVm(vm, 'slow', { cleanShutdownS: 600 })
      const ctrl = new AbortController()
      const reason = new Error('deadline')
      const pending = xapi.callAsync('VM.clean_shutdown', [vm], {
        signal: ctrl.signal,
        onProgress: () => ctrl.abort(reason),
      })
      await expect(pending).rejects.toBe(reason)
      const methods = sim.calls.map((c) => c.method)
      expect(methods).toContain('task.cancel')
      expect(methods.lastIndexOf('task.destroy')).toBeGreaterThan(
        methods.lastIndexOf('task.cancel')
      )
      await expect.poll(() => xapi.call('VM.get_power_state', vm)).toBe(record.power_state)
    })

    test('a slow server trips the per-call timeout', async ({ sim, opts }) => {
      await using xapi = await connect({ ...opts, transport, callTimeoutMs: 100 })
      sim.faults.latencyMs(1_000)
      await expect(xapi.call('pool.get_all')).rejects.toMatchObject({
        code: 'XAPI_CLIENT_TIMEOUT',
        timeoutMs: 100,
      })
      sim.faults.clear()
      expect(await xapi.call('pool.get_all')).toHaveLength(1)
    })
  }
)
