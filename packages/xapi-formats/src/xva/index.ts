export { DiskHasher, XVA_BLOCK_SIZE, isZeroBlock, zeroBlockDigest } from './disk-hash.js'
export { DEFAULT_XVA_VERSION, buildOvaXml, parseOvaXml, xvaDisks } from './ova-xml.js'
export type { XvaDisk, XvaExportObject, XvaHeader, XvaObject } from './ova-xml.js'
export { TAR_BLOCK, TAR_END, TarParser, parseTarHeader, tarHeader, tarPadding } from './tar.js'
export type { TarEntry, TarParserHandlers } from './tar.js'
export { XvaVerifier, createXvaVerifier, verifyXva } from './verifier.js'
export type { XvaDiskSummary, XvaSummary, XvaVerifierOptions } from './verifier.js'
export { createXvaWriter, writeXva } from './writer.js'
export type {
  XvaChecksum,
  XvaCompression,
  XvaBlockPieces,
  XvaDiskSource,
  XvaReadable,
  XvaWriterOptions,
} from './writer.js'
export { parseXmlRpcValue, serializeXmlRpcValue } from './xmlrpc-value.js'
export type { XmlRpcValue } from './xmlrpc-value.js'
export { XvaInspector } from './inspector.js'
export type { XvaInspectorOptions } from './inspector.js'
