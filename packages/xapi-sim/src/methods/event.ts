import { XapiFailure } from '../errors.js'
import type { PoolDb } from '../model/db.js'
import { genericClasses } from '../rpc/generic.js'
import { defineMethod, toFloat, toList, type CallCtx } from '../rpc/registry.js'
import { I4 } from '../wire/values.js'

/** `%020d,%020d`: zero-padded so tokens compare as strings (second part: message generation). */
export function formatToken(gen: number): string {
  return `${String(gen).padStart(20, '0')},${'0'.repeat(20)}`
}

/** xapi's Token.of_string: `""` → 0, else exactly two comma-separated integers. */
function parseToken(token: unknown): number {
  if (token === '') return 0
  // OCaml's Int64.of_string on each part: no surrounding blanks
  const m = typeof token === 'string' ? /^([-+]?\d+),([-+]?\d+)$/.exec(token) : null
  if (!m) throw new XapiFailure('EVENT_FROM_TOKEN_PARSE_FAILURE', [String(token)])
  return Number(m[1])
}

type Subscription = { all: boolean; classes: Set<string>; refs: Map<string, Set<string>> }

/** xapi's Subscription.of_string: `*`, `class` or `class/ref` (class case-insensitive). */
function parseSubscription(classes: unknown[]): Subscription {
  const sub: Subscription = { all: false, classes: new Set(), refs: new Map() }
  for (const c of classes) {
    if (typeof c !== 'string')
      throw new XapiFailure('EVENT_SUBSCRIPTION_PARSE_FAILURE', [String(c)])
    if (c === '*') {
      sub.all = true
      continue
    }
    const slash = c.indexOf('/')
    const cls = (slash < 0 ? c : c.slice(0, slash)).toLowerCase()
    if (slash < 0) sub.classes.add(cls)
    else {
      let s = sub.refs.get(cls)
      if (!s) sub.refs.set(cls, (s = new Set()))
      s.add(c.slice(slash + 1))
    }
  }
  return sub
}

function tableMatches(sub: Subscription, lc: string): boolean {
  return sub.all || sub.classes.has(lc) || sub.refs.has(lc)
}

function matches(sub: Subscription, lc: string, ref: string): boolean {
  return sub.all || sub.classes.has(lc) || (sub.refs.get(lc)?.has(ref) ?? false)
}

/** Every class of the model (also those without objects), for valid_ref_counts. */
function allClasses(db: PoolDb): string[] {
  return [...new Set([...genericClasses(), ...db.classes()])]
}

/**
 * Counts of every table (lower-case names), as xapi's from_inner folds over the whole table set;
 * sent as `<i4>`.
 */
function validRefCounts(db: PoolDb): Record<string, I4> {
  const out: Record<string, I4> = {}
  for (const cls of allClasses(db)) out[cls.toLowerCase()] = new I4(db.all(cls).size)
  return out
}

type Found = { cls: string; ref: string; gen: number }

/**
 * xapi's from_inner: objects of the subscribed tables created after `from` give an `add` event,
 * those created before it and modified after it a `mod` event; objects deleted after `from` a `del` event (unless
 * also created after it). Events: adds, then mods, then dels; `ts` is "0.0" and `id` the
 * generation. The token advances to the newest relevant change only.
 */
function collect(db: PoolDb, sub: Subscription, from: number) {
  const creates: Found[] = []
  const mods: Found[] = []
  const dels: Found[] = []
  let last = from
  const consider = (cls: string, ref: string) => {
    const lc = cls.toLowerCase()
    if (!matches(sub, lc, ref)) return
    const st = db.stat(ref)
    if (st) {
      if (st.modified <= from) return
      last = Math.max(last, st.modified)
      // only an `add` for an object created since the token (xapi: "Only have a mod event if we
      // don't have a created event")
      if (st.created > from) creates.push({ cls: lc, ref, gen: st.created })
      else mods.push({ cls: lc, ref, gen: st.modified })
      return
    }
    const t = db.tombstone(ref)
    if (!t || t.deleted <= from) return
    last = Math.max(last, t.deleted)
    if (t.created <= from) dels.push({ cls: lc, ref, gen: t.deleted })
  }
  if (from < db.oldestLoggedGeneration) {
    for (const cls of allClasses(db)) {
      if (!tableMatches(sub, cls.toLowerCase())) continue
      for (const ref of db.all(cls).keys()) consider(cls, ref)
    }
    for (const [ref, t] of db.tombstones()) consider(t.cls, ref)
  } else {
    const seen = new Set<string>()
    for (const c of db.changesSince(from)) {
      if (seen.has(c.ref)) continue
      seen.add(c.ref)
      consider(c.cls, c.ref)
    }
  }
  const events: Record<string, unknown>[] = []
  const ev = (f: Found, operation: string) => {
    const e: Record<string, unknown> = {
      id: String(f.gen),
      timestamp: '0.0',
      class: f.cls,
      operation,
      ref: f.ref,
    }
    if (operation !== 'del') {
      const snap = db.get(f.ref)
      if (!snap) return
      e.snapshot = snap
    }
    events.push(e)
  }
  for (const f of creates) ev(f, 'add')
  for (const f of mods) ev(f, 'mod')
  for (const f of dels) ev(f, 'del')
  return { events, last }
}

/** event.from(classes, token, timeout): long-polls until a matching event or the timeout. */
async function eventFrom(
  ctx: CallCtx,
  classesArg: unknown,
  tokenArg: unknown,
  timeoutArg: unknown
) {
  const sub = parseSubscription(toList(classesArg, 'classes'))
  let from = parseToken(tokenArg)
  const timeoutS = toFloat(timeoutArg, 'timeout')
  const db = ctx.db
  // The long poll is real time (not scaled): it is the client's own timeout.
  const deadline = Date.now() + Math.max(0, timeoutS) * 1000
  for (;;) {
    const seenGeneration = db.generation
    const { events, last } = collect(db, sub, from)
    from = last
    const left = deadline - Date.now()
    if (events.length > 0 || left <= 0 || ctx.state.closing.signal.aborted) {
      return { events, valid_ref_counts: validRefCounts(db), token: formatToken(from) }
    }
    // xapi wakes blocked event.from calls of a session that is logged out: SESSION_INVALID
    if (ctx.session && !ctx.state.sessions.has(ctx.session.ref)) {
      throw new XapiFailure('SESSION_INVALID', [ctx.session.ref])
    }
    if (db.generation === seenGeneration)
      await db.waitForChange(Math.min(left, 500), ctx.state.closing.signal)
  }
}

defineMethod('event.from', {
  arity: [3],
  run: (ctx, [classes, token, timeout]) => eventFrom(ctx, classes, token, timeout),
})

// event.inject(class, ref): a `mod` event for an object; returns the token after it.
defineMethod('event.inject', {
  arity: [2],
  run(ctx, [cls, ref]) {
    // xapi compares the ref's table name with `_class` exactly (`vm` is not `VM`)
    const c = String(cls)
    if (typeof ref !== 'string' || ctx.db.classOf(ref) !== c)
      throw new XapiFailure('HANDLE_INVALID', [c, String(ref)])
    ctx.db.touch(ref)
    // xapi returns the token just before the touch, so that event.from with it sees the change
    return formatToken(ctx.db.generation - 1)
  },
})

defineMethod('event.get_current_id', { arity: [0], run: (ctx) => ctx.db.generation })

// Legacy event.register / event.next / event.unregister (per session).
const registrations = new Map<string, { classes: unknown[]; gen: number }>()

defineMethod('event.register', {
  arity: [1],
  run(ctx, [classes]) {
    const prev = registrations.get(ctx.session!.ref)
    const list = toList(classes, 'classes')
    parseSubscription(list)
    registrations.set(ctx.session!.ref, {
      classes: [...(prev?.classes ?? []), ...list],
      gen: prev?.gen ?? ctx.db.generation,
    })
  },
})

defineMethod('event.unregister', {
  arity: [1],
  run(ctx, [classes]) {
    const reg = registrations.get(ctx.session!.ref)
    if (!reg) return
    const drop = new Set(toList(classes, 'classes').map((c) => String(c).toLowerCase()))
    reg.classes = reg.classes.filter((c) => !drop.has(String(c).toLowerCase()))
  },
})

defineMethod('event.next', {
  arity: [0],
  async run(ctx) {
    const reg = registrations.get(ctx.session!.ref)
    if (!reg) throw new XapiFailure('SESSION_NOT_REGISTERED', [ctx.session!.ref])
    const sub = parseSubscription(reg.classes)
    // Event.next: one event per change (no coalescing), `timestamp` in seconds
    for (;;) {
      const events: Record<string, unknown>[] = []
      for (const c of ctx.db.changesSince(reg.gen)) {
        if (!matches(sub, c.cls.toLowerCase(), c.ref)) continue
        const e: Record<string, unknown> = {
          id: String(c.gen),
          timestamp: String(c.at.getTime() / 1000),
          class: c.cls.toLowerCase(),
          operation: c.op,
          ref: c.ref,
        }
        const snap = c.op === 'del' ? undefined : ctx.db.get(c.ref)
        if (snap) e.snapshot = snap
        events.push(e)
      }
      reg.gen = ctx.db.generation
      if (events.length > 0 || ctx.state.closing.signal.aborted) return events
      await ctx.db.waitForChange(30_000, ctx.state.closing.signal)
    }
  },
})
