/** Actions reported in host-shutdown results. */
export type ShutdownAction = 'clean_shutdown' | 'hard_shutdown' | 'migrated' | 'none'

type VmRef = { readonly vm: string; readonly name: string }

/** A VM as listed in the plan event. */
export type PlanEntry = VmRef & {
  readonly power_state: string
  /** What will be tried first. */
  readonly action: 'clean_shutdown' | 'hard_shutdown' | 'migrate'
}

/** The typed event stream of host-shutdown (NDJSON with `--json`). */
export type HostShutdownEvent =
  | { readonly kind: 'host'; readonly host: string; readonly name: string }
  | {
      readonly kind: 'plan'
      readonly host: string
      readonly dryRun: boolean
      /** Highest order first. */
      readonly groups: ReadonlyArray<{ readonly order: number; readonly vms: readonly PlanEntry[] }>
      readonly skipped: ReadonlyArray<VmRef & { readonly reason: string }>
      /** With `--evacuate`: where VMs may go and what cannot move. */
      readonly evacuate?: {
        readonly targets: readonly string[]
        readonly budgetS: number
        readonly movable: readonly VmRef[]
        readonly blocked: ReadonlyArray<VmRef & { readonly reason: string }>
      }
    }
  | { readonly kind: 'evacuate-start'; readonly vms: number; readonly budgetS: number }
  | {
      readonly kind: 'evacuate-end'
      readonly outcome: 'done' | 'failed' | 'timeout' | 'deadline' | 'interrupted' | 'skipped'
      readonly migrated: number
      readonly remaining: number
      readonly error?: string
    }
  | { readonly kind: 'group-start'; readonly order: number; readonly vms: number }
  | { readonly kind: 'group-end'; readonly order: number }
  | (VmRef & {
      readonly kind: 'vm-action'
      readonly action: 'clean_shutdown' | 'hard_shutdown'
      readonly reason?: string
    })
  | (VmRef & {
      readonly kind: 'vm-done'
      readonly status: 'ok' | 'skipped' | 'failed'
      readonly action: ShutdownAction
      readonly error?: string
      readonly errorCode?: string
    })
  | { readonly kind: 'deadline'; readonly remaining: number }

/** Human lines for {@link HostShutdownEvent}s (journald-friendly, one line each). */
export function formatHostShutdownEvent(event: HostShutdownEvent): string | undefined {
  switch (event.kind) {
    case 'host':
      return `host ${event.name} (${event.host})`
    case 'plan': {
      const lines = [`plan${event.dryRun ? ' (dry run: nothing will be changed)' : ''}:`]
      if (event.evacuate) {
        const { targets, budgetS, movable, blocked } = event.evacuate
        lines.push(
          targets.length === 0
            ? '  evacuate: no other enabled host, nothing can move'
            : `  evacuate to ${targets.join(', ')} within ${Math.round(budgetS)} s: ${movable.map(label).join(', ') || 'nothing'}`
        )
        for (const b of blocked) lines.push(`  cannot move ${label(b)}: ${b.reason}`)
      }
      for (const group of event.groups) {
        const vms = group.vms
          .map((vm) => `${label(vm)} [${vm.power_state}, ${vm.action}]`)
          .join(', ')
        lines.push(`  order ${group.order}: ${vms}`)
      }
      for (const s of event.skipped) lines.push(`  skip ${label(s)}: ${s.reason}`)
      if (event.groups.length === 0 && event.skipped.length === 0)
        lines.push('  no VM to shut down')
      return lines.join('\n')
    }
    case 'evacuate-start':
      return `evacuating ${event.vms} VM(s), at most ${Math.round(event.budgetS)} s`
    case 'evacuate-end':
      return `evacuation ${event.outcome}: ${event.migrated} migrated, ${event.remaining} left${event.error ? ` (${event.error})` : ''}`
    case 'group-start':
      return `order ${event.order}: shutting down ${event.vms} VM(s)`
    case 'group-end':
      return undefined
    case 'vm-action':
      return `${event.action === 'clean_shutdown' ? 'clean' : 'hard'} shutdown of ${label(event)}${event.reason ? ` (${event.reason})` : ''}`
    case 'vm-done':
      return `${label(event)}: ${event.status} (${event.action})${event.error ? `: ${event.error}` : ''}`
    case 'deadline':
      return `deadline reached: cancelling pending work, hard shutdown of ${event.remaining} remaining VM(s)`
  }
}

function label(vm: VmRef): string {
  return `${vm.name} (${vm.vm})`
}
