import { XapiProtocolError } from '../errors.js'
import type { Ref } from '@xapi-ops/xapi-formats'

const EMPTY_ARRAY = /<array>\s*<data>\s*<\/data>\s*<\/array>|<data\s*\/>/
const REF_VALUE = /<value>(?:<string>)?\s*(OpaqueRef:[^<\s]*)\s*(?:<\/string>)?<\/value>/g
const BARE_REF = /^\s*(OpaqueRef:[^<\s]+)\s*$/

/**
 * The VMs an `/import` task made, from its result. xapi writes the refs as an XML-RPC array
 * (`<value><array><data><value>OpaqueRef:…</value></data></array></value>`, import.ml
 * `handler`); a JSON array of refs and a bare ref are taken too, so that a server that
 * encodes it otherwise does not leave a VM nobody knows of.
 */
export function decodeVmRefs(result: unknown): Ref<'VM'>[] {
  if (Array.isArray(result) && result.every((r) => typeof r === 'string')) {
    return result as Ref<'VM'>[]
  }
  if (typeof result === 'string') {
    const refs = [...result.matchAll(REF_VALUE)].map((m) => m[1] as Ref<'VM'>)
    if (refs.length > 0 || EMPTY_ARRAY.test(result)) return refs
    const bare = BARE_REF.exec(result)
    if (bare) return [bare[1] as Ref<'VM'>]
  }
  throw new XapiProtocolError(
    `unexpected result of an import task: ${String(result).slice(0, 200)}`
  )
}
