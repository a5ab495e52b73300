import { clientBench } from './client.js'
import { hostShutdownBench } from './host-shutdown.js'
import { simulatorBench } from './simulator.js'
import { transferBench } from './transfer.js'
import { vmExportBench } from './vm-export.js'
import { vmMigrateBench } from './vm-migrate.js'
import type { Bench } from '../lib/types.js'

/** Every benchmark, in the order they run. */
export const BENCHES: Bench[] = [
  simulatorBench,
  clientBench,
  transferBench,
  hostShutdownBench,
  vmExportBench,
  vmMigrateBench,
]
