/** What an HTTP action handler needs from the simulator (filled in shortly). */
export type SimContext = Record<string, unknown>
