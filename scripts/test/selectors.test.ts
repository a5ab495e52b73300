import { describe, expect, it } from 'vitest'
import { UsageError } from '../src/lib/errors.js'
import {
  assertSelection,
  createVmMatcher,
  selectVms,
  type SelectableVm,
  type SelectorArgs,
} from '../src/lib/selectors.js'

const vm = (uuid: string, name_label: string, extra: Partial<SelectableVm> = {}): SelectableVm => ({
  uuid,
  name_label,
  tags: [],
  is_a_template: false,
  is_a_snapshot: false,
  is_control_domain: false,
  ...extra,
})

const vms: Record<string, SelectableVm> = {
  'OpaqueRef:1': vm('aaaaaaaa-0000-0000-0000-000000000001', 'web-1', { tags: ['prod'] }),
  'OpaqueRef:2': vm('aaaaaaaa-0000-0000-0000-000000000002', 'web-2'),
  'OpaqueRef:3': vm('aaaaaaaa-0000-0000-0000-000000000003', 'db/primary', { tags: ['prod', 'db'] }),
  'OpaqueRef:4': vm('aaaaaaaa-0000-0000-0000-000000000004', 'web-template', {
    is_a_template: true,
  }),
  'OpaqueRef:5': vm('aaaaaaaa-0000-0000-0000-000000000005', 'web-1 snap', { is_a_snapshot: true }),
  'OpaqueRef:6': vm('aaaaaaaa-0000-0000-0000-000000000006', 'Control domain', {
    is_control_domain: true,
  }),
}
const none: SelectorArgs = { vm: [], tag: [], all: false, exclude: [] }
const names = (args: Partial<SelectorArgs>) =>
  selectVms(vms, { ...none, ...args }).selected.map((s) => s.record.name_label)

describe('selectVms', () => {
  it.each([
    [{ vm: ['web-1'] }, ['web-1']],
    [{ vm: ['AAAAAAAA-0000-0000-0000-000000000002'] }, ['web-2']],
    [{ vm: ['web-*'] }, ['web-1', 'web-2']],
    [{ vm: ['db/*'] }, ['db/primary']],
    [{ vm: ['*'] }, ['web-1', 'web-2', 'db/primary']],
    [{ tag: ['db'] }, ['db/primary']],
    [{ tag: ['prod'], vm: ['web-2'] }, ['web-1', 'web-2', 'db/primary']],
    [{ all: true }, ['web-1', 'web-2', 'db/primary']],
    [{ all: true, exclude: ['web-*'] }, ['db/primary']],
    [{ tag: ['prod'], exclude: ['aaaaaaaa-0000-0000-0000-000000000001'] }, ['db/primary']],
  ])('%j selects %j', (args, expected) => {
    expect(names(args)).toEqual(expected)
  })

  it('never selects templates, snapshots or control domains, and reports such --vm as unmatched', () => {
    const selection = selectVms(vms, {
      ...none,
      vm: ['web-template', 'Control domain', 'web-1 snap'],
    })
    expect(selection.selected).toEqual([])
    expect(selection.unmatched).toEqual(['web-template', 'Control domain', 'web-1 snap'])
  })

  it('lists every --vm that matched nothing, even if excluded ones matched', () => {
    const args = { ...none, vm: ['web-1', 'nope', 'x-*'], exclude: ['web-1'] }
    const selection = selectVms(vms, args)
    expect(selection.selected).toEqual([])
    expect(selection.unmatched).toEqual(['nope', 'x-*'])
    expect(() => assertSelection(args, selection)).toThrowErrorMatchingInlineSnapshot(
      `[UsageError: --vm "nope", "x-*" matched no VM (templates, snapshots and control domains are never selected)]`
    )
  })

  it('requires at least one selector', () => {
    expect(() => assertSelection(none, selectVms(vms, none))).toThrow(UsageError)
  })
})

describe('createVmMatcher', () => {
  it('treats names with glob characters literally when they match exactly', () => {
    const match = createVmMatcher('odd[1]')
    expect(match(vm('u', 'odd[1]'))).toBe(true)
    expect(match(vm('u', 'odd1'))).toBe(true)
    expect(match(vm('u', 'odd2'))).toBe(false)
  })
})
