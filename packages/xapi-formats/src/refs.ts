declare const brand: unique symbol

/** An opaque XAPI reference (`OpaqueRef:…`) branded with its class name (`VM`, `host`, …). */
export type Ref<C extends string> = string & { readonly [brand]: C }

/** The null reference XAPI uses for "no object". */
export const NULL_REF = 'OpaqueRef:NULL' as Ref<never>

/** Whether `ref` is XAPI's null reference (or empty). */
export function isNullRef(ref: string | undefined | null): boolean {
  return ref === undefined || ref === null || ref === '' || ref === NULL_REF
}
