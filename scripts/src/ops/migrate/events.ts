import { formatNetworkCleanup, type NetworkCleanup } from '../transfer/imported-networks.js'
import { formatBytes, type MigrationPlan } from './plan.js'

type VmId = { readonly vm: string; readonly name: string }

/** A row of the plan table (and of the `plan` event's `vms`). */
export type PlanRow = VmId & {
  readonly power: string
  readonly method: string
  readonly disks: number
  readonly bytes: number
  readonly sr: string
  /** `source network → destination network` per VIF device. */
  readonly networks: ReadonlyArray<{
    readonly device: string
    readonly from: string
    readonly to: string
  }>
  readonly resume?: string
  /** Halted, but running before an earlier run shut it down for its copy (journal or marker). */
  readonly wasRunning?: true
}

/** The typed event stream of vm-migrate (NDJSON with `--json`). */
export type MigrateEvent =
  | {
      readonly kind: 'plan'
      readonly dryRun: boolean
      readonly source: string
      readonly destination: string
      readonly sr: string
      readonly vms: readonly PlanRow[]
      readonly skipped: ReadonlyArray<VmId & { readonly reason: string }>
      readonly space: MigrationPlan['space']
      readonly errors: readonly string[]
    }
  | (VmId & { readonly kind: 'vm-start'; readonly method: string; readonly resume?: string })
  | (VmId & {
      readonly kind: 'vm-method'
      readonly method: 'native' | 'stream'
      readonly reason?: string
    })
  | (VmId & { readonly kind: 'vm-shutdown'; readonly action: 'clean_shutdown' | 'hard_shutdown' })
  | (VmId & { readonly kind: 'vm-step'; readonly step: string; readonly newVm?: string })
  | (VmId & {
      readonly kind: 'vm-progress'
      readonly bytes: number
      readonly fraction?: number
      readonly rateBytesPerSec?: number
    })
  | (VmId & { readonly kind: 'vm-retry'; readonly reason: string; readonly delayMs: number })
  | (VmId & { readonly kind: 'vm-cleanup'; readonly action: string; readonly error?: string })
  | {
      /** The journal could not be written at the end of the run (the report still follows). */
      readonly kind: 'journal-error'
      readonly error: string
    }
  | ({
      /**
       * A network a stream import made and nothing uses any more: removed (or not: `error`).
       * Without `network`: the networks could not be listed.
       */
      readonly kind: 'network-cleanup'
    } & NetworkCleanup)
  | (VmId & {
      readonly kind: 'vm-done'
      readonly status: 'ok' | 'skipped' | 'failed'
      readonly method?: string
      readonly newVm?: string
      readonly error?: string
      readonly errorCode?: string
    })

/** Plan rows for the `plan` event. */
export function planRows(plan: MigrationPlan): PlanRow[] {
  return plan.vms.map((vm) => ({
    vm: vm.uuid,
    name: vm.name,
    power: vm.sourceGone ? 'gone' : vm.powerState,
    method: vm.method,
    disks: vm.disks.length,
    bytes: vm.disks.reduce((sum, d) => sum + d.virtualSize, 0),
    sr: plan.sr.name,
    networks: vm.vifs.map((v) => ({
      device: v.device,
      from: v.sourceNetworkName,
      to: v.networkName,
    })),
    resume: vm.resume ? `${vm.resume.step} (${vm.resume.status})` : undefined,
    ...(vm.wasRunning &&
      vm.powerState === 'Halted' &&
      !vm.sourceGone && { wasRunning: true as const }),
  }))
}

/** Human lines for {@link MigrateEvent}s. */
export function formatMigrateEvent(event: MigrateEvent): string | undefined {
  switch (event.kind) {
    case 'plan':
      return formatPlan(event)
    case 'vm-start':
      return `${label(event)}: migrating (${event.method})${event.resume ? `, resuming after ${event.resume}` : ''}`
    case 'vm-method':
      return `${label(event)}: method ${event.method}${event.reason ? ` (${event.reason})` : ''}`
    case 'vm-shutdown':
      return `${label(event)}: ${event.action === 'clean_shutdown' ? 'clean' : 'hard'} shutdown of the source`
    case 'vm-step':
      return `${label(event)}: ${event.step}${event.newVm ? ` → ${event.newVm}` : ''}`
    case 'vm-progress':
      return `${label(event)}: ${formatBytes(event.bytes)}${event.fraction === undefined ? '' : ` (${Math.round(event.fraction * 100)} %)`}`
    case 'vm-retry':
      return `${label(event)}: ${event.reason}, retrying in ${Math.round(event.delayMs / 100) / 10} s`
    case 'vm-cleanup':
      return `${label(event)}: cleanup: ${event.action}${event.error ? ` failed: ${event.error}` : ''}`
    case 'network-cleanup':
      return formatNetworkCleanup(event)
    case 'journal-error':
      return event.error
    case 'vm-done':
      // Failures are in the results list; say where a copy went.
      return event.status === 'ok'
        ? `${label(event)}: migrated (${event.method}) → ${event.newVm}`
        : undefined
  }
}

function formatPlan(event: Extract<MigrateEvent, { kind: 'plan' }>): string {
  const lines = [
    `plan: ${event.source} → ${event.destination}, disks to SR ${event.sr || '?'}${event.dryRun ? ' (dry run: nothing will be changed)' : ''}`,
  ]
  const header = ['VM', 'UUID', 'POWER', 'METHOD', 'DISKS', 'SIZE', 'NETWORKS']
  const rows = event.vms.map((r) => [
    r.name,
    r.vm,
    r.wasRunning ? `${r.power} (was Running)` : r.power,
    r.method + (r.resume ? ` (resume: ${r.resume})` : ''),
    String(r.disks),
    formatBytes(r.bytes),
    r.networks.map((n) => `${n.device}:${n.from}→${n.to}`).join(' ') || '-',
  ])
  if (rows.length > 0) lines.push(...table([header, ...rows]))
  else lines.push('  no VM to migrate')
  for (const s of event.skipped) lines.push(`  skip ${s.name} (${s.vm}): ${s.reason}`)
  for (const s of event.space) {
    lines.push(
      `  SR ${s.name}: needs ${formatBytes(s.requiredBytes)}, ${formatBytes(s.freeBytes)} free`
    )
  }
  for (const e of event.errors) lines.push(`  error: ${e}`)
  return lines.join('\n')
}

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)))
  return rows.map((r) => `  ${r.map((c, i) => c.padEnd(widths[i]!)).join('  ')}`.trimEnd())
}

function label(vm: VmId): string {
  return `${vm.name} (${vm.vm})`
}
