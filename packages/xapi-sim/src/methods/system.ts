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

// gen_server.ml matches `system.listMethods` before looking at the parameters: any count is
// accepted (XenAPI.py sends the session), also with an Async. prefix (the list itself, no task),
// and no session is checked (see dispatch.ts).
// Over XML-RPC the answer is the bare array, without the Status envelope (api_server.ml).
defineMethod('system.listMethods', {
  arity: [0, 0],
  session: false,
  anyHost: true,
  run: () => allMethodNames(),
})
