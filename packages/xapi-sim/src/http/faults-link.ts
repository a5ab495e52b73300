import type { SimFaults } from '../faults.js'
import type { TransferFaults } from '../transfer-faults.js'

/** The transfer faults of a simulator (`sim.faults.transfer`). */
export function transferFaultsOf(faults: SimFaults): TransferFaults {
  return faults.transfer
}
