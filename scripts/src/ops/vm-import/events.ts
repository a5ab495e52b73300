import { formatNetworkCleanup, type NetworkCleanup } from '../transfer/imported-networks.js'
import { formatBytes, formatDuration, formatRate } from '../transfer/format.js'

type FileId = { readonly file: string }

/** The typed event stream of vm-import (NDJSON with `--json`). */
export type VmImportEvent =
  | {
      readonly kind: 'plan'
      readonly files: readonly string[]
      readonly sr: string
      readonly srName: string
      readonly restore: boolean
      readonly force: boolean
      readonly start: boolean
      readonly verify: boolean
      readonly dryRun: boolean
    }
  | (FileId & {
      readonly kind: 'verified'
      readonly bytes: number
      readonly compression: string
      readonly vms: readonly string[]
      readonly disks: number
    })
  | (FileId & { readonly kind: 'import-start'; readonly bytes: number })
  | (FileId & {
      readonly kind: 'import-progress'
      readonly bytes: number
      readonly fraction?: number
      readonly rateBytesPerSec: number
      readonly etaS?: number
    })
  | (FileId & {
      readonly kind: 'import-done'
      readonly newVm: string
      readonly name: string
      readonly durationMs: number
    })
  | (FileId & { readonly kind: 'vm-started'; readonly newVm: string })
  | (FileId & { readonly kind: 'leftover-destroyed'; readonly vm: string })
  | (FileId & { readonly kind: 'import-failed'; readonly error: string })
  | (FileId & {
      readonly kind: 'import-retry'
      readonly attempt: number
      readonly delayMs: number
      readonly error: string
    })
  | ({ readonly kind: 'network-cleanup' } & NetworkCleanup)
  | {
      readonly kind: 'progress'
      readonly done: number
      readonly total: number
      readonly bytes: number
      readonly rateBytesPerSec: number
    }

/** Human lines for vm-import's events. */
export function formatImportEvent(event: VmImportEvent): string | undefined {
  switch (event.kind) {
    case 'plan': {
      const flags = [
        event.restore && 'restore',
        event.force && 'force',
        event.start && 'start',
        !event.verify && 'no local verification',
      ].filter(Boolean)
      const head = `${event.dryRun ? 'plan (dry run)' : 'plan'}: ${event.files.length} file(s) → SR ${event.srName} (${event.sr})${flags.length ? `, ${flags.join(', ')}` : ''}`
      return [head, ...event.files.map((f) => `  ${f}`)].join('\n')
    }
    case 'verified':
      return `${event.file}: verified (${formatBytes(event.bytes)}, ${event.compression}, VM ${event.vms.join(', ')}, ${event.disks} disk(s))`
    case 'import-start':
      return `${event.file}: importing ${formatBytes(event.bytes)}`
    case 'import-progress': {
      const pct = event.fraction === undefined ? '' : ` (${Math.floor(event.fraction * 100)}%)`
      return `${event.file}: ${formatBytes(event.bytes)}${pct}, ${formatRate(event.rateBytesPerSec)}, ETA ${formatDuration(event.etaS)}`
    }
    case 'import-done':
      return `${event.file}: imported as ${event.name} (${event.newVm}) in ${formatDuration(event.durationMs / 1000)}`
    case 'vm-started':
      return `${event.file}: VM ${event.newVm} started`
    case 'leftover-destroyed':
      return `${event.file}: VM ${event.vm} left by the failed import destroyed`
    case 'import-failed':
      return `${event.file}: import failed: ${event.error}`
    case 'import-retry':
      return `${event.file}: attempt ${event.attempt} failed (${event.error}); retrying in ${formatDuration(event.delayMs / 1000)}`
    case 'network-cleanup':
      return formatNetworkCleanup(event)
    case 'progress':
      return `overall: ${event.done}/${event.total} file(s) done, ${formatBytes(event.bytes)}, ${formatRate(event.rateBytesPerSec)}`
  }
}
