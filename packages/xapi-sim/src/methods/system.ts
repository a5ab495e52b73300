import { genericMethodNames } from '../rpc/generic.js'
import { METHODS, defineMethod } from '../rpc/registry.js'

let cached: string[] | undefined

/** Every method name, as `system.listMethods` returns them (sync wire names only, as xapi). */
export function allMethodNames(): string[] {
  if (!cached) {
    const names = new Set<string>(genericMethodNames())
    for (const name of METHODS.keys()) names.add(name)
    cached = [...names].sort()
  }
  return cached
}

defineMethod('system.listMethods', {
  arity: [0],
  session: false,
  anyHost: true,
  run: () => allMethodNames(),
})
defineMethod('system.methodHelp', { arity: [1], session: false, anyHost: true, run: () => '' })
defineMethod('system.methodSignature', { arity: [1], session: false, anyHost: true, run: () => [] })
