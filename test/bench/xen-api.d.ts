declare module 'xen-api' {
  export function createClient(options: Record<string, unknown>): {
    connect(): Promise<void>
    disconnect(): Promise<void>
    call(method: string, ...args: unknown[]): Promise<any>
  }
}
