import * as v from 'valibot'

/*
 * Seed files: the data a simulator starts from. Validated with valibot at the boundary; errors
 * name the dot path of the offending value (`pools.0.vms.3.powerState: Invalid option …`).
 */

const Name = v.pipe(v.string(), v.minLength(1, 'must be a non-empty string'))
const NonNegInt = v.pipe(v.number(), v.integer(), v.minValue(0))
const StringMap = v.record(v.string(), v.string())

const DiskSeed = v.strictObject({
  name: v.optional(v.string()),
  sizeMiB: v.pipe(v.number(), v.minValue(0)),
  /** SR name (default: the pool's default SR). */
  sr: v.optional(Name),
  /** Fraction of blocks holding data (0..1). @default 0.5 */
  allocated: v.optional(v.pipe(v.number(), v.minValue(0), v.maxValue(1))),
})

const VmSeed = v.strictObject({
  name: Name,
  description: v.optional(v.string()),
  powerState: v.optional(v.picklist(['Running', 'Halted', 'Suspended', 'Paused'])),
  /** Host name the VM runs on (Running/Paused); default: placed by free memory. */
  host: v.optional(Name),
  memoryMiB: v.optional(v.pipe(v.number(), v.minValue(1))),
  vcpus: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1))),
  template: v.optional(v.boolean()),
  tags: v.optional(v.array(v.string())),
  order: v.optional(NonNegInt),
  startDelay: v.optional(NonNegInt),
  shutdownDelay: v.optional(NonNegInt),
  otherConfig: v.optional(StringMap),
  blockedOperations: v.optional(StringMap),
  disks: v.optional(v.array(DiskSeed)),
  /** Network names, one VIF each. */
  networks: v.optional(v.array(Name)),
  /** Names of snapshots to create of this VM. */
  snapshots: v.optional(v.array(Name)),
  behaviour: v.optional(v.picklist(['normal', 'slow', 'ignore', 'no-pv'])),
  cleanShutdownS: v.optional(v.pipe(v.number(), v.minValue(0))),
  /** VM_appliance name. */
  appliance: v.optional(Name),
})

const PoolSeed = v.strictObject({
  name: Name,
  hosts: v.pipe(
    v.array(
      v.strictObject({
        name: Name,
        memoryGiB: v.optional(v.pipe(v.number(), v.minValue(1))),
        cpus: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1))),
        enabled: v.optional(v.boolean()),
      })
    ),
    v.minLength(1, 'a pool needs at least one host')
  ),
  srs: v.array(
    v.strictObject({
      name: Name,
      type: v.optional(v.string()),
      shared: v.optional(v.boolean()),
      default: v.optional(v.boolean()),
      sizeGiB: v.optional(v.pipe(v.number(), v.minValue(0))),
      /** For a local (non-shared) SR: the host it is plugged on (default: the first). */
      host: v.optional(Name),
      contentType: v.optional(v.string()),
    })
  ),
  networks: v.array(v.strictObject({ name: Name, bridge: v.optional(v.string()) })),
  appliances: v.optional(
    v.array(v.strictObject({ name: Name, description: v.optional(v.string()) }))
  ),
  vms: v.optional(v.array(VmSeed)),
  otherConfig: v.optional(StringMap),
})

export const SeedSchema = v.strictObject({
  pools: v.pipe(v.array(PoolSeed), v.minLength(1, 'a seed needs at least one pool')),
})

/** The data a simulator is seeded with. */
export type SeedData = v.InferOutput<typeof SeedSchema>
export type PoolSeed = SeedData['pools'][number]
export type VmSeed = NonNullable<PoolSeed['vms']>[number]

/** Validates seed data: `{ ok: true, value }` or `{ ok: false, errors }` with dot-path messages. */
export function validateSeed(
  data: unknown
): { ok: true; value: SeedData } | { ok: false; errors: string[] } {
  const r = v.safeParse(SeedSchema, data)
  if (!r.success) {
    return {
      ok: false,
      errors: r.issues.map((i) => `${v.getDotPath(i) ?? '(root)'}: ${i.message}`),
    }
  }
  const errors: string[] = []
  r.output.pools.forEach((p, pi) => {
    const hosts = new Set(p.hosts.map((h) => h.name))
    const srs = new Set(p.srs.map((s) => s.name))
    const nets = new Set(p.networks.map((n) => n.name))
    const apps = new Set((p.appliances ?? []).map((a) => a.name))
    if (hosts.size !== p.hosts.length) errors.push(`pools.${pi}.hosts: host names must be unique`)
    if (r.output.pools.filter((q) => q.name === p.name).length > 1)
      errors.push(`pools.${pi}.name: duplicate pool name ${p.name}`)
    p.srs.forEach((s, si) => {
      if (s.host !== undefined && !hosts.has(s.host))
        errors.push(`pools.${pi}.srs.${si}.host: no host named ${s.host}`)
    })
    ;(p.vms ?? []).forEach((vm, vi) => {
      const at = `pools.${pi}.vms.${vi}`
      if (vm.host !== undefined && !hosts.has(vm.host))
        errors.push(`${at}.host: no host named ${vm.host}`)
      if (vm.appliance !== undefined && !apps.has(vm.appliance))
        errors.push(`${at}.appliance: no appliance named ${vm.appliance}`)
      ;(vm.disks ?? []).forEach((d, di) => {
        if (d.sr !== undefined && !srs.has(d.sr))
          errors.push(`${at}.disks.${di}.sr: no SR named ${d.sr}`)
      })
      ;(vm.networks ?? []).forEach((n, ni) => {
        if (!nets.has(n)) errors.push(`${at}.networks.${ni}: no network named ${n}`)
      })
      if (vm.template && vm.powerState !== undefined && vm.powerState !== 'Halted')
        errors.push(`${at}.powerState: a template must be Halted`)
    })
  })
  return errors.length ? { ok: false, errors } : { ok: true, value: r.output }
}
