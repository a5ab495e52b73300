// The operations behind the scripts, for benchmarks and for callers who embed them.
export { shutdownHost } from './ops/host-shutdown.js'
export type {
  HostShutdownOptions,
  HostShutdownContext,
  HostShutdownReport,
} from './ops/host-shutdown.js'
