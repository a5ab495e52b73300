import type { SimFaults } from '../faults.js'
import { TransferFaults } from '../transfer-faults.js'

const byFaults = new WeakMap<SimFaults, TransferFaults>()

/** The transfer faults attached to a simulator's `faults` (created on first use, reset by `clear()`). */
export function transferFaultsOf(faults: SimFaults): TransferFaults {
  let t = byFaults.get(faults)
  if (!t) {
    const created = new TransferFaults()
    byFaults.set(faults, created)
    faults.onClear(() => created.clear())
    t = created
  }
  return t
}
