import { XapiFailure } from '../errors.js'
import type { PoolDb, SimChange } from '../model/db.js'
import { canonicalClass } from '../rpc/generic.js'
import { defineMethod, toFloat, toList, type CallCtx } from '../rpc/registry.js'
import { I4 } from '../wire/values.js'

/** `%020d,%020d`: zero-padded so tokens compare as strings (second part: message generation). */
export function formatToken(gen: number): string {
  return `${String(gen).padStart(20, '0')},${'0'.repeat(20)}`
}

function parseToken(token: unknown): number {
  if (token === '') return -1
  const m = typeof token === 'string' ? /^(\d+)(?:,(\d+))?$/.exec(token) : null
  if (!m) throw new XapiFailure('EVENT_FROM_TOKEN_PARSE_FAILURE', [String(token)])
  return Number(m[1])
}

type Subscription = { all: boolean; classes: Set<string>; refs: Map<string, Set<string>> }

function parseSubscription(classes: unknown[]): Subscription {
  const sub: Subscription = { all: false, classes: new Set(), refs: new Map() }
  for (const c of classes) {
    if (typeof c !== 'string' || c === '')
      throw new XapiFailure('EVENT_SUBSCRIPTION_PARSE_FAILURE', [String(c)])
    if (c === '*') {
      sub.all = true
      continue
    }
    const slash = c.indexOf('/')
    const cls = (slash < 0 ? c : c.slice(0, slash)).toLowerCase()
    if (cls === '' || /\s/.test(cls)) throw new XapiFailure('EVENT_SUBSCRIPTION_PARSE_FAILURE', [c])
    if (slash < 0) sub.classes.add(cls)
    else {
      let s = sub.refs.get(cls)
      if (!s) sub.refs.set(cls, (s = new Set()))
      s.add(c.slice(slash + 1))
    }
  }
  return sub
}

function matches(sub: Subscription, cls: string, ref: string): boolean {
  const lc = cls.toLowerCase()
  return sub.all || sub.classes.has(lc) || (sub.refs.get(lc)?.has(ref) ?? false)
}

function timestamp(d: Date): string {
  const ms = d.getTime()
  return `${Math.floor(ms / 1000)}.${String((ms % 1000) * 1000).padStart(6, '0')}`
}

function eventOf(db: PoolDb, c: SimChange, op: SimChange['op']) {
  const ev: Record<string, unknown> = {
    id: String(c.gen),
    timestamp: timestamp(c.at),
    class: c.cls.toLowerCase(),
    operation: op,
    ref: c.ref,
  }
  if (op !== 'del') {
    const snap = db.get(c.ref)
    if (!snap) return undefined
    ev.snapshot = snap
  }
  return ev
}

function validRefCounts(db: PoolDb, sub: Subscription): Record<string, I4> {
  const out: Record<string, I4> = {}
  for (const cls of db.classes()) {
    const lc = cls.toLowerCase()
    if (sub.all || sub.classes.has(lc) || sub.refs.has(lc)) out[lc] = new I4(db.all(cls).size)
  }
  for (const lc of [...sub.classes, ...sub.refs.keys()]) {
    if (out[lc] === undefined && canonicalClass(lc) !== undefined) out[lc] = new I4(0)
  }
  return out
}

/** Coalesced events (one per object) for changes after `gen` that match `sub`. */
function collect(db: PoolDb, sub: Subscription, gen: number): unknown[] {
  const latest = new Map<string, { change: SimChange; added: boolean }>()
  for (const c of db.changesSince(gen)) {
    if (!matches(sub, c.cls, c.ref)) continue
    const prev = latest.get(c.ref)
    latest.set(c.ref, { change: c, added: (prev?.added ?? false) || c.op === 'add' })
  }
  const out: unknown[] = []
  for (const { change, added } of latest.values()) {
    const op = change.op === 'del' ? 'del' : added ? 'add' : 'mod'
    const ev = eventOf(db, change, op)
    if (ev) out.push(ev)
  }
  return out
}

function snapshotAll(db: PoolDb, sub: Subscription): unknown[] {
  const out: unknown[] = []
  const now = new Date()
  for (const cls of db.classes()) {
    for (const [ref, rec] of db.all(cls)) {
      if (!matches(sub, cls, ref)) continue
      out.push({
        id: String(db.generation),
        timestamp: timestamp(now),
        class: cls.toLowerCase(),
        operation: 'add',
        ref,
        snapshot: rec,
      })
    }
  }
  return out
}

/** event.from(classes, token, timeout): long-polls until a matching event or the timeout. */
async function eventFrom(
  ctx: CallCtx,
  classesArg: unknown,
  tokenArg: unknown,
  timeoutArg: unknown
) {
  const sub = parseSubscription(toList(classesArg, 'classes'))
  const since = parseToken(tokenArg)
  const timeoutS = toFloat(timeoutArg, 'timeout')
  const db = ctx.db
  if (since < 0) {
    return {
      events: snapshotAll(db, sub),
      valid_ref_counts: validRefCounts(db, sub),
      token: formatToken(db.generation),
    }
  }
  // The long poll is real time (not scaled): it is the client's own timeout.
  const deadline = Date.now() + Math.max(0, timeoutS) * 1000
  let gen = since
  for (;;) {
    const events = collect(db, sub, gen)
    gen = Math.max(gen, db.generation)
    const left = deadline - Date.now()
    if (events.length > 0 || left <= 0 || ctx.state.closing.signal.aborted) {
      return { events, valid_ref_counts: validRefCounts(db, sub), token: formatToken(gen) }
    }
    await db.waitForChange(left, ctx.state.closing.signal)
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
    const c = canonicalClass(String(cls)) ?? String(cls)
    ctx.db.require(c, ref)
    ctx.db.touch(ref as string)
    return formatToken(ctx.db.generation)
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
    for (;;) {
      const events = collect(ctx.db, sub, reg.gen)
      reg.gen = ctx.db.generation
      if (events.length > 0 || ctx.state.closing.signal.aborted) return events
      await ctx.db.waitForChange(30_000, ctx.state.closing.signal)
    }
  },
})
