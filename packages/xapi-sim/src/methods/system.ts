import { genericMethodNames } from '../rpc/generic.js'
import { METHODS, defineMethod } from '../rpc/registry.js'

let cached: string[] | undefined

/** Every method name, `Async.` variants included (what `system.listMethods` returns). */
export function allMethodNames(): string[] {
  if (!cached) {
    const names = new Set<string>(genericMethodNames())
    for (const [name, spec] of METHODS) {
      names.add(name)
      if (spec.async) names.add(`Async.${name}`)
    }
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
