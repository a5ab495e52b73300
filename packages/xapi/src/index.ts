export { connect, createClient, XapiClient } from './client.js'
export type { CallOptions } from './client.js'
export type { ClientOptions, ResolvedClientOptions } from './options.js'
export { normalizeFingerprint } from './options.js'
export {
  XapiError,
  XapiClientError,
  XapiTransportError,
  XapiProtocolError,
  XapiTimeoutError,
  XapiTlsError,
  InvalidOptionError,
  XAPI_CLIENT_ERROR_CODES,
  isXapiError,
  isXapiClientError,
} from './errors.js'
export type { CallContext, XapiClientErrorCode } from './errors.js'
export { XAPI_ERROR_PARAMS, isKnownXapiErrorCode } from './error-codes.js'
export type { XapiErrorCode } from './error-codes.js'
export { NULL_REF, isNullRef } from './refs.js'
export type { Ref } from './refs.js'
export {
  decodeXmlRpcValue,
  encodeXmlRpcValue,
  formatXapiDate,
  parseXapiDate,
} from './transport/codec.js'
export { normalizeRecord } from './records.js'
export type * from './records.js'
export type { TaskHandle, CallAsyncOptions } from './tasks.js'
export type { WatchTaskOptions } from './task-watcher.js'
export type { XapiEvent, WatchEventsOptions } from './events.js'
export * from './xva/index.js'
export * from './transfer/index.js'
export * from './file/index.js'
