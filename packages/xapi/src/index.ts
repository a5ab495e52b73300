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
export { XAPI_ERROR_PARAMS, isKnownXapiErrorCode } from '@xapi-ops/xapi-formats'
export type { XapiErrorCode } from '@xapi-ops/xapi-formats'
export { NULL_REF, isNullRef } from '@xapi-ops/xapi-formats'
export type { Ref } from '@xapi-ops/xapi-formats'
export { decodeXmlRpcValue, encodeXmlRpcValue } from './transport/codec.js'
export { formatXapiDate, parseXapiDate } from '@xapi-ops/xapi-formats'
export { normalizeRecord } from './records.js'
export type * from './records.js'
export type { TaskHandle, CallAsyncOptions } from './tasks.js'
export type { WatchTaskOptions } from './task-watcher.js'
export type { XapiEvent, WatchEventsOptions } from './events.js'
export {
  DEFAULT_XVA_VERSION,
  DiskHasher,
  TAR_BLOCK,
  TAR_END,
  TarParser,
  XVA_BLOCK_SIZE,
  XvaVerifier,
  buildOvaXml,
  createXvaVerifier,
  createXvaWriter,
  isZeroBlock,
  parseOvaXml,
  parseTarHeader,
  parseXmlRpcValue,
  serializeXmlRpcValue,
  tarHeader,
  tarPadding,
  verifyXva,
  writeXva,
  xvaDisks,
  zeroBlockDigest,
} from '@xapi-ops/xapi-formats'
export type {
  TarEntry,
  TarParserHandlers,
  XmlRpcValue,
  XvaBlockPieces,
  XvaChecksum,
  XvaCompression,
  XvaDisk,
  XvaDiskSummary,
  XvaDiskSource,
  XvaExportObject,
  XvaHeader,
  XvaObject,
  XvaReadable,
  XvaSummary,
  XvaVerifierOptions,
  XvaWriterOptions,
} from '@xapi-ops/xapi-formats'
export * from './transfer/index.js'
export * from './file/index.js'
