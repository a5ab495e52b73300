import { formatBytes, formatDuration, formatRate } from '../transfer/format.js'
import type { ExportAction } from './plan.js'

type VmId = { readonly vm: string; readonly name: string }

/** A VM as listed in the plan event. */
export type PlanEntry = VmId & {
  readonly power_state: string
  readonly action: ExportAction
  readonly host: string
  readonly file: string
  readonly estimateBytes: number
}

/** The typed event stream of vm-export (NDJSON with `--json`). */
export type VmExportEvent =
  | {
      readonly kind: 'plan'
      readonly pool: string
      readonly out: string
      readonly compression: string
      /** Who compresses: the host (`use_compression`) or this machine. */
      readonly compressOn: 'host' | 'client'
      readonly metadataOnly: boolean
      readonly dryRun: boolean
      readonly vms: readonly PlanEntry[]
    }
  | (VmId & { readonly kind: 'resumed'; readonly file: string; readonly bytes: number })
  | (VmId & { readonly kind: 'snapshot'; readonly snapshot: string })
  | (VmId & { readonly kind: 'snapshot-destroyed'; readonly snapshot: string })
  | (VmId & { readonly kind: 'vm-stopped'; readonly action: 'clean_shutdown' | 'hard_shutdown' })
  | (VmId & { readonly kind: 'vm-restarted' })
  | (VmId & {
      /** What an earlier, killed run (`pid`) left: undone (`action`), or not (`error`). */
      readonly kind: 'leftover'
      readonly pid: number
      readonly action: string
      readonly error?: string
    })
  | (VmId & {
      readonly kind: 'export-start'
      readonly file: string
      readonly attempt: number
      readonly source: 'vm' | 'snapshot'
    })
  | (VmId & {
      readonly kind: 'export-progress'
      readonly bytes: number
      readonly fraction?: number
      readonly rateBytesPerSec: number
      readonly etaS?: number
    })
  | (VmId & {
      readonly kind: 'export-retry'
      readonly attempt: number
      readonly delayMs: number
      readonly error: string
    })
  | (VmId & {
      readonly kind: 'export-done'
      readonly file: string
      readonly bytes: number
      readonly sha256: string
      readonly durationMs: number
    })
  | (VmId & { readonly kind: 'export-failed'; readonly error: string })
  | {
      readonly kind: 'progress'
      readonly done: number
      readonly total: number
      readonly bytes: number
      readonly rateBytesPerSec: number
    }

/** Human lines for vm-export's events. */
export function formatExportEvent(event: VmExportEvent): string | undefined {
  switch (event.kind) {
    case 'plan': {
      const head = `${event.dryRun ? 'plan (dry run)' : 'plan'}: ${event.vms.length} VM(s) of pool ${event.pool} → ${event.out} (compression ${event.compression}${event.compressOn === 'client' ? ' on this machine' : ''}${event.metadataOnly ? ', metadata only' : ''})`
      const lines = event.vms.map(
        (v) =>
          `  ${v.action.padEnd(8)} ${v.name} (${v.vm}) ${v.power_state} on ${v.host} → ${v.file} ~${formatBytes(v.estimateBytes)}`
      )
      return [head, ...lines].join('\n')
    }
    case 'resumed':
      return `${event.name}: ${event.file} already exported and verified (${formatBytes(event.bytes)}): skipped`
    case 'snapshot':
      return `${event.name}: snapshot ${event.snapshot} taken`
    case 'snapshot-destroyed':
      return `${event.name}: snapshot ${event.snapshot} destroyed`
    case 'vm-stopped':
      return `${event.name}: stopped (${event.action})`
    case 'vm-restarted':
      return `${event.name}: started again`
    case 'leftover':
      return event.error
        ? `${event.name}: left by a killed run (pid ${event.pid}): could not ${event.action}: ${event.error}`
        : `${event.name}: left by a killed run (pid ${event.pid}): ${event.action}`
    case 'export-start':
      return `${event.name}: exporting${event.source === 'snapshot' ? ' its snapshot' : ''} to ${event.file}${event.attempt > 1 ? ` (attempt ${event.attempt})` : ''}`
    case 'export-progress': {
      const pct = event.fraction === undefined ? '' : ` (${Math.floor(event.fraction * 100)}%)`
      return `${event.name}: ${formatBytes(event.bytes)}${pct}, ${formatRate(event.rateBytesPerSec)}, ETA ${formatDuration(event.etaS)}`
    }
    case 'export-retry':
      return `${event.name}: attempt ${event.attempt} failed (${event.error}); retrying in ${formatDuration(event.delayMs / 1000)}`
    case 'export-done':
      return `${event.name}: ${event.file} written and verified, ${formatBytes(event.bytes)} in ${formatDuration(event.durationMs / 1000)}`
    case 'export-failed':
      return `${event.name}: export failed: ${event.error}`
    case 'progress':
      return `overall: ${event.done}/${event.total} VM(s) done, ${formatBytes(event.bytes)}, ${formatRate(event.rateBytesPerSec)}`
  }
}
