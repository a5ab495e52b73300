import { clientBench } from './client.js'
import { simulatorBench } from './simulator.js'
import { transferBench } from './transfer.js'
import type { Bench } from '../lib/types.js'

/** Every benchmark, in the order they run. */
export const BENCHES: Bench[] = [simulatorBench, clientBench, transferBench]
