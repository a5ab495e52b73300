// Xen Orchestra's client ships no types; only what the fidelity tests use.
declare module 'xen-api' {
  export type XenApiObject = Record<string, any> & { $type: string; $ref: string; $id: string }
  export type XenApi = {
    connect(): Promise<void>
    disconnect(): Promise<void>
    call(method: string, ...args: unknown[]): Promise<any>
    callAsync(method: string, ...args: unknown[]): Promise<any>
    readonly objectsFetched: Promise<void>
    readonly objects: { all: Record<string, XenApiObject> }
    getObjectByRef(ref: string, defaultValue?: unknown): XenApiObject
  }
  export function createClient(options: Record<string, unknown>): XenApi
}
