import { MIGRATE_MARKER, type MVm } from './records.js'
import { ignoring, type MigrateXapi } from './xapi.js'

/** A VM of that name appeared on the destination after the plan: the copy is not made. */
export class NameClashError extends Error {
  override name = 'NameClashError'
  readonly code = 'NAME_CLASH'
}

/**
 * The plan's name-clash rule again, just before a copy: no VM of the destination (templates,
 * snapshots and control domains aside) may bear the name, except copies of this very source.
 * A batch takes time; someone may have made one since. Throws {@link NameClashError}.
 */
export async function assertNoNameClash(
  dest: MigrateXapi,
  vm: { readonly uuid: string; readonly name: string },
  signal?: AbortSignal
): Promise<void> {
  const refs = await dest.call<string[]>('VM.get_by_name_label', [vm.name], { signal })
  for (const ref of refs) {
    const other = await ignoring(['HANDLE_INVALID'], () =>
      dest.call<MVm>('VM.get_record', [ref], { signal })
    )
    if (other === undefined || other.is_a_template || other.is_a_snapshot) continue
    if (other.is_control_domain || other.other_config?.[MIGRATE_MARKER] === vm.uuid) continue
    throw new NameClashError(
      `name clash: the destination pool now has a VM named ${JSON.stringify(vm.name)} (${other.uuid}), made after the plan; nothing was changed`
    )
  }
}
