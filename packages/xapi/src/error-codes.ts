/**
 * The XAPI error codes this project produces or handles, with the names of their parameters,
 * transcribed from xapi-project/xen-api `ocaml/idl/datamodel_errors.ml` (names in snake_case).
 * Shared by the client (to label `XapiError.params`) and the simulator (to shape failures).
 */
// prettier-ignore
export const XAPI_ERROR_PARAMS = {
  SESSION_AUTHENTICATION_FAILED: ['uname', 'message'],
  SESSION_INVALID: ['handle'],
  HOST_IS_SLAVE: ['master_address'],
  HANDLE_INVALID: ['class', 'handle'],
  UUID_INVALID: ['class', 'uuid'],
  MESSAGE_METHOD_UNKNOWN: ['method'],
  MESSAGE_PARAMETER_COUNT_MISMATCH: ['method', 'expected', 'received'],
  FIELD_TYPE_ERROR: ['field'],
  INTERNAL_ERROR: ['message'],
  PERMISSION_DENIED: ['message'],
  RBAC_PERMISSION_DENIED: ['permission', 'message'],
  OPERATION_NOT_ALLOWED: ['reason'],
  OPERATION_BLOCKED: ['ref', 'code'],
  OPERATION_PARTIALLY_FAILED: ['operation'],
  VM_BAD_POWER_STATE: ['vm', 'expected', 'actual'],
  OTHER_OPERATION_IN_PROGRESS: ['class', 'object', 'operation_type', 'operation_ref'],
  VM_IS_TEMPLATE: ['vm', 'operation'],
  VM_IS_SNAPSHOT: ['vm', 'operation'],
  VM_MISSING_PV_DRIVERS: ['vm'],
  VM_LACKS_FEATURE: ['vm'],
  VM_FAILED_SHUTDOWN_ACKNOWLEDGMENT: ['vm'],
  VM_SHUTDOWN_TIMEOUT: ['vm', 'timeout'],
  VM_NOT_RESIDENT_HERE: ['vm', 'host'],
  NO_HOSTS_AVAILABLE: [],
  HOST_NOT_ENOUGH_FREE_MEMORY: ['needed', 'available'],
  HOST_DISABLED: ['host'],
  HOST_OFFLINE: ['host'],
  HOST_NOT_LIVE: [],
  HOST_NOT_DISABLED: [],
  HOST_EVACUATE_IN_PROGRESS: ['host'],
  CANNOT_EVACUATE_HOST: ['errors'],
  VM_REQUIRES_SR: ['vm', 'sr'],
  VM_REQUIRES_NETWORK: ['vm', 'network'],
  VM_MIGRATE_FAILED: ['vm', 'source', 'destination', 'msg'],
  TOO_MANY_STORAGE_MIGRATES: ['number'],
  VM_HAS_PCI_ATTACHED: ['vm'],
  VM_HAS_VGPU: ['vm'],
  TASK_CANCELLED: ['task'],
  DEFAULT_SR_NOT_FOUND: ['sr'],
  SR_OPERATION_NOT_SUPPORTED: ['sr'],
  SR_FULL: ['requested', 'maximum'],
  VDI_IN_USE: ['vdi', 'operation'],
  VDI_IO_ERROR: ['reason'],
  IMPORT_ERROR: ['msg'],
  IMPORT_ERROR_PREMATURE_EOF: [],
  IMPORT_ERROR_SOME_CHECKSUMS_FAILED: [],
  IMPORT_ERROR_CANNOT_HANDLE_CHUNKED: [],
  IMPORT_ERROR_FAILED_TO_FIND_OBJECT: ['id'],
  IMPORT_ERROR_ATTACHED_DISKS_NOT_FOUND: [],
  IMPORT_ERROR_UNEXPECTED_FILE: ['filename_expected', 'filename_found'],
  IMPORT_INCOMPATIBLE_VERSION: [],
  VM_TO_IMPORT_IS_NOT_NEWER_VERSION: ['vm', 'existing_version', 'version_to_import'],
  NOT_SUPPORTED_DURING_UPGRADE: [],
  EVENT_FROM_TOKEN_PARSE_FAILURE: ['token'],
  EVENT_SUBSCRIPTION_PARSE_FAILURE: ['subscription'],
  EVENTS_LOST: [],
  TOO_MANY_PENDING_TASKS: [],
  HOST_CANNOT_ATTACH_NETWORK: ['host', 'network'],
  VM_INCOMPATIBLE_WITH_THIS_HOST: ['vm', 'host', 'reason'],
} as const satisfies Record<string, readonly string[]>

/** A code in {@link XAPI_ERROR_PARAMS}. */
export type XapiErrorCode = keyof typeof XAPI_ERROR_PARAMS

/** Whether `code` is one of the XAPI error codes in {@link XAPI_ERROR_PARAMS}. */
export function isKnownXapiErrorCode(code: string): code is XapiErrorCode {
  return Object.hasOwn(XAPI_ERROR_PARAMS, code)
}
