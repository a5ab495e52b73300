import picomatch from 'picomatch'
import type { Argv } from 'yargs'
import { UsageError } from './errors.js'

/** The VM selectors of vm-export and vm-migrate (issue 6). */
export type SelectorArgs = {
  /** uuid, exact name_label, or a glob on name_label (`web-*`); repeatable. */
  readonly vm: readonly string[]
  /** Tag; repeatable. */
  readonly tag: readonly string[]
  readonly all: boolean
  /** Same forms as `vm`; removes VMs from the selection; repeatable. */
  readonly exclude: readonly string[]
}

/** The fields of a VM record that selection reads (wire names). */
export type SelectableVm = {
  readonly uuid: string
  readonly name_label: string
  readonly tags?: readonly string[]
  readonly is_a_template: boolean
  readonly is_a_snapshot: boolean
  readonly is_control_domain: boolean
}

/** Adds `--vm`, `--tag`, `--all`, `--exclude`. */
export function addSelectorOptions<T>(argv: Argv<T>): Argv<T & SelectorArgs> {
  const group = 'Selection (union of --vm, --tag, --all, less --exclude):'
  return argv
    .option('vm', {
      type: 'string',
      array: true,
      default: [],
      group,
      describe: 'VM uuid, exact name, or glob on the name (web-*); repeatable',
    })
    .option('tag', {
      type: 'string',
      array: true,
      default: [],
      group,
      describe: 'VMs with this tag; repeatable',
    })
    .option('all', { type: 'boolean', default: false, group, describe: 'every VM' })
    .option('exclude', {
      type: 'string',
      array: true,
      default: [],
      group,
      describe: 'VM uuid, name or glob to leave out; repeatable',
    }) as unknown as Argv<T & SelectorArgs>
}

/** Whether a VM can ever be selected: not a template, snapshot or control domain. */
export function isSelectable(vm: SelectableVm): boolean {
  return !vm.is_a_template && !vm.is_a_snapshot && !vm.is_control_domain
}

/**
 * A matcher for one `--vm`/`--exclude` value: the uuid (case-insensitive), the exact
 * name_label, or — when the value has glob characters — a picomatch glob on name_label.
 */
export function createVmMatcher(pattern: string): (vm: SelectableVm) => boolean {
  const lower = pattern.toLowerCase()
  // picomatch treats `/` as a path separator (`*` would not cross it); VM names are not
  // paths, so `/` is swapped for a character that has no meaning to picomatch on both sides.
  const slash = '\u2215'
  const glob = picomatch.scan(pattern).isGlob
    ? picomatch(pattern.replaceAll('/', slash), { dot: true, nonegate: true })
    : undefined
  return (vm) =>
    vm.uuid.toLowerCase() === lower ||
    vm.name_label === pattern ||
    (glob !== undefined && glob(vm.name_label.replaceAll('/', slash)))
}

/** The outcome of {@link selectVms}. */
export type Selection<R> = {
  /** Selected VMs, in the order of `vms`. */
  readonly selected: ReadonlyArray<{ readonly ref: string; readonly record: R }>
  /** `--vm` values that matched no selectable VM. */
  readonly unmatched: readonly string[]
}

/**
 * Applies the selectors to `vms` (ref → record, as `VM.get_all_records` returns): the union of
 * `--vm`, `--tag` and `--all`, less `--exclude`; templates, snapshots and control domains are
 * never selected. Does not throw: see {@link assertSelection}.
 */
export function selectVms<R extends SelectableVm>(
  vms: Readonly<Record<string, R>>,
  args: SelectorArgs
): Selection<R> {
  const candidates = Object.entries(vms).filter(([, record]) => isSelectable(record))
  const vmMatchers = args.vm.map((pattern) => ({
    pattern,
    match: createVmMatcher(pattern),
    hits: 0,
  }))
  const excludes = args.exclude.map(createVmMatcher)
  const tags = new Set(args.tag)
  const selected: Array<{ ref: string; record: R }> = []
  for (const [ref, record] of candidates) {
    let picked = args.all || (record.tags ?? []).some((tag) => tags.has(tag))
    for (const matcher of vmMatchers) {
      if (matcher.match(record)) {
        matcher.hits++
        picked = true
      }
    }
    if (picked && !excludes.some((exclude) => exclude(record))) selected.push({ ref, record })
  }
  return { selected, unmatched: vmMatchers.filter((m) => m.hits === 0).map((m) => m.pattern) }
}

/**
 * Throws a {@link UsageError} (exit 2, before anything changes) when no selector was given or a
 * `--vm` matched no selectable VM.
 */
export function assertSelection(args: SelectorArgs, selection: Selection<unknown>): void {
  if (args.vm.length === 0 && args.tag.length === 0 && !args.all) {
    throw new UsageError('select VMs with --vm, --tag or --all')
  }
  if (selection.unmatched.length > 0) {
    const list = selection.unmatched.map((p) => JSON.stringify(p)).join(', ')
    throw new UsageError(
      `--vm ${list} matched no VM (templates, snapshots and control domains are never selected)`
    )
  }
}
