import { XapiError } from '../errors.js'
import { parseXmlRpcValue, serializeXmlRpcValue } from './xmlrpc-value.js'
import type { XmlRpcValue } from './xmlrpc-value.js'

/** One object of an XVA's `ova.xml`: class, export-local id (`Ref:N`) and record. */
export interface XvaObject {
  class: string
  id: string
  snapshot: Record<string, XmlRpcValue>
}

/** The parsed `ova.xml`. */
export interface XvaHeader {
  version: Record<string, XmlRpcValue>
  objects: XvaObject[]
}

/** An object to export: its real ref (rewritten to `Ref:N` everywhere) and its API record. */
export interface XvaExportObject {
  class: string
  ref: string
  record: Record<string, unknown>
}

/** A disk the importer expects in the archive, in stream order. */
export interface XvaDisk {
  /** Export-local id, also the tar directory of the disk's blocks (`Ref:7`). */
  id: string
  virtualSize: number
  vdi: XvaObject
}

export const NULL_REF_STRING = 'OpaqueRef:NULL'

/** Version struct: export_vsn 2 and a low xapi_major/minor so every importer accepts it. */
export const DEFAULT_XVA_VERSION = {
  hostname: 'localhost',
  date: '2025-01-01',
  product_version: '8.3.0',
  product_brand: 'xapi-ops',
  build_number: 'xapi-ops',
  xapi_major: 1,
  xapi_minor: 1,
  export_vsn: 2,
} as const

function rewrite(v: unknown, ids: ReadonlyMap<string, string>): unknown {
  if (typeof v === 'string') return v.startsWith('OpaqueRef:') ? (ids.get(v) ?? NULL_REF_STRING) : v
  if (Array.isArray(v)) return v.map((x) => rewrite(x, ids))
  if (v !== null && typeof v === 'object' && !(v instanceof Date)) {
    const out: Record<string, unknown> = {}
    for (const [k, x] of Object.entries(v)) out[rewrite(k, ids) as string] = rewrite(x, ids)
    return out
  }
  return v
}

/**
 * Builds `ova.xml`: ids `Ref:<firstId>`, `Ref:<firstId+1>`, ... in the given order, every
 * `OpaqueRef:` string rewritten to the id of that object, or `OpaqueRef:NULL` when not exported.
 */
export function buildOvaXml(
  objects: readonly XvaExportObject[],
  opts: { firstId?: number; version?: Record<string, unknown> } = {}
): { xml: string; header: XvaHeader; ids: Map<string, string> } {
  const first = opts.firstId ?? 0
  const ids = new Map(objects.map((o, i) => [o.ref, `Ref:${first + i}`]))
  const header = {
    version: { ...DEFAULT_XVA_VERSION, ...opts.version },
    objects: objects.map((o) => ({
      class: o.class,
      id: ids.get(o.ref)!,
      snapshot: rewrite(o.record, ids) as Record<string, XmlRpcValue>,
    })),
  }
  return { xml: serializeXmlRpcValue(header).join(''), header: header as XvaHeader, ids }
}

function isStruct(v: unknown): v is Record<string, XmlRpcValue> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** Parses `ova.xml`; a malformed document is `IMPORT_ERROR [msg]`. */
export function parseOvaXml(xml: string): XvaHeader {
  let v: XmlRpcValue
  try {
    v = parseXmlRpcValue(xml)
  } catch (e) {
    throw new XapiError('IMPORT_ERROR', [`Invalid ova.xml: ${(e as Error).message}`])
  }
  const bad = (what: string): never => {
    throw new XapiError('IMPORT_ERROR', [`Invalid ova.xml: ${what}`])
  }
  if (!isStruct(v) || !isStruct(v.version) || !Array.isArray(v.objects)) bad('no version/objects')
  const h = v as { version: Record<string, XmlRpcValue>; objects: XmlRpcValue[] }
  const objects = h.objects.map((o) => {
    if (
      !isStruct(o) ||
      typeof o.class !== 'string' ||
      typeof o.id !== 'string' ||
      !isStruct(o.snapshot)
    ) {
      return bad('object without class/id/snapshot')
    }
    return { class: o.class, id: o.id, snapshot: o.snapshot }
  })
  return { version: h.version, objects }
}

/** An integer field that ocaml-rpc may have written untyped (a decimal string). */
export function intField(v: XmlRpcValue): number {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^-?\d+$/.test(v) ? Number(v) : NaN
  if (!Number.isSafeInteger(n))
    throw new XapiError('IMPORT_ERROR', [`Invalid ova.xml: bad integer ${String(v)}`])
  return n
}

/**
 * The disks an importer reads, in stream order: VDIs of non-CD VBDs whose SR is not `iso`, plus
 * `suspend` VDIs, sorted by id (xapi's `non_cdrom_vdis` + `for_each_vdi`). An id missing from the
 * archive is `IMPORT_ERROR_FAILED_TO_FIND_OBJECT [id]`.
 */
export function xvaDisks(header: XvaHeader): XvaDisk[] {
  const byId = new Map(header.objects.map((o) => [o.id, o]))
  const find = (id: XmlRpcValue): XvaObject => {
    const o = byId.get(String(id))
    if (!o) throw new XapiError('IMPORT_ERROR_FAILED_TO_FIND_OBJECT', [String(id)])
    return o
  }
  const wanted = new Set<string>()
  for (const vbd of header.objects) {
    if (vbd.class !== 'VBD' || vbd.snapshot.type === 'CD') continue
    const vdi = find(vbd.snapshot.VDI ?? '')
    if (find(vdi.snapshot.SR ?? '').snapshot.content_type !== 'iso') wanted.add(vdi.id)
  }
  return header.objects
    .filter((o) => o.class === 'VDI' && (wanted.has(o.id) || o.snapshot.type === 'suspend'))
    .map((vdi) => ({ id: vdi.id, virtualSize: intField(vdi.snapshot.virtual_size ?? ''), vdi }))
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
}
