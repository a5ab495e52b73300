import { setTimeout as delay } from 'node:timers/promises'
import { XapiFailure, toErrorDescription } from '../errors.js'
import { newRef } from '../model/db.js'
import { completeTask, createTask, failTask, syncHandle, taskHandle } from '../model/tasks.js'
import { REDACTED, type HostRuntime, type SimSession, type SimState } from '../state.js'
import { resolveMethod } from './generic.js'
import type { CallCtx } from './registry.js'

export type Outcome = { ok: true; value: unknown } | { ok: false; description: string[] }

const LOGIN_METHODS = new Set([
  'session.login_with_password',
  'session.slave_local_login_with_password',
])

function redact(state: SimState, v: unknown, depth = 0): unknown {
  if (typeof v === 'string') return state.sessions.has(v) ? REDACTED : v
  if (depth > 3 || typeof v !== 'object' || v === null || v instanceof Date) return v
  if (Array.isArray(v)) return v.length > 100 ? v : v.map((x) => redact(state, x, depth + 1))
  const out: Record<string, unknown> = {}
  for (const [k, x] of Object.entries(v)) out[k] = redact(state, x, depth + 1)
  return out
}

/**
 * Runs one RPC as xapi would: method lookup (MESSAGE_METHOD_UNKNOWN), arity
 * (MESSAGE_PARAMETER_COUNT_MISMATCH), HOST_IS_SLAVE on a non-master, session check
 * (SESSION_INVALID), injected faults, then the call itself (or, for `Async.*`, a task).
 * Never throws: every failure is an ErrorDescription.
 */
export async function dispatch(
  state: SimState,
  host: HostRuntime,
  method: string,
  params: unknown[],
  transport: 'xml-rpc' | 'json-rpc',
  opts: { local?: boolean } = {}
): Promise<Outcome> {
  const started = performance.now()
  let session: SimSession | undefined
  let outcome: Outcome
  const latency = state.faults.currentLatencyMs
  // Redacted before the call: a session.logout ends the session its parameter names.
  const recorded = params.map((p, i) => {
    if (LOGIN_METHODS.has(method) && i === 1) return REDACTED
    return redact(state, p)
  })
  try {
    // node timers may fire a fraction of a millisecond early: wait out the full latency
    while (latency > 0 && performance.now() - started < latency)
      await delay(Math.max(1, latency - (performance.now() - started)))
    const value = await call(state, host, method, params, (s) => (session = s), opts.local ?? false)
    outcome = { ok: true, value }
  } catch (e) {
    outcome = { ok: false, description: toErrorDescription(e) }
  }
  state.record({
    method,
    params: recorded,
    ...(session ? { session: (session as SimSession).uuid } : {}),
    host: host.name,
    transport,
    durationMs: performance.now() - started,
    outcome: outcome.ok
      ? 'success'
      : outcome.description[0] === 'INTERNAL_ERROR'
        ? 'error'
        : 'failure',
    ...(outcome.ok ? {} : { error: outcome.description }),
  })
  return outcome
}

async function call(
  state: SimState,
  host: HostRuntime,
  method: string,
  params: unknown[],
  onSession: (s: SimSession) => void,
  local: boolean
): Promise<unknown> {
  const isAsync = method.startsWith('Async.')
  const base = isAsync ? method.slice(6) : method
  // gen_server.ml: `system.isAlive:<x>` echoes its first parameter
  if (base.startsWith('system.isAlive:') && params.length > 0) return params[0]
  const spec = resolveMethod(base)
  if (base === 'system.listMethods') return spec!.run(undefined as never, [])
  const pool = host.pool
  const master = state.masterOf(pool)
  /*
   * xapi's session check (Session_check.check): an unknown session is SESSION_INVALID, a valid
   * one on a supporter HOST_IS_SLAVE [master address].
   */
  const checkSession = (ref: unknown): SimSession => {
    const session = state.session(ref, pool)
    onSession(session)
    if (master !== host)
      throw new XapiFailure('HOST_IS_SLAVE', [master.url.replace(/^https?:\/\//, '')])
    return session
  }
  if (!spec) {
    // xapi's dispatcher checks the session of an unknown call (it may be an extension) before
    // answering MESSAGE_METHOD_UNKNOWN; the name is reported without its Async. prefix
    if (params.length > 0) checkSession(params[0])
    throw new XapiFailure('MESSAGE_METHOD_UNKNOWN', [base])
  }
  const withSession = spec.session !== false
  const offset = withSession ? 1 : 0
  // xapi counts neither the session nor the parameters that have defaults: a message with
  // defaults accepts any count from its mandatory ones up (gen_server.ml `::default_args`).
  const mandatory = Math.min(...spec.arity)
  const received = params.length - offset
  const hasDefaults = spec.arity.length > 1
  if (hasDefaults ? received < mandatory : received !== mandatory) {
    throw new XapiFailure('MESSAGE_PARAMETER_COUNT_MISMATCH', [
      base,
      String(mandatory),
      String(received),
    ])
  }
  let session: SimSession | undefined
  if (withSession) {
    session = spec.anyHost ? state.session(params[0], pool) : checkSession(params[0])
    onSession(session)
    session.calls++
    session.lastActive = new Date()
    if (state.faults.sessionExpired(session.calls)) {
      state.logout(session.ref)
      throw new XapiFailure('SESSION_INVALID', [session.ref])
    }
  } else if (!spec.anyHost && master !== host) {
    throw new XapiFailure('HOST_IS_SLAVE', [master.url.replace(/^https?:\/\//, '')])
  }
  // server_helpers.ml do_dispatch: an Async. call of a message without an async mode
  if (isAsync && !spec.async)
    throw new XapiFailure('Fault', [`No async mode for this operation (rpc: ${base})`])
  const args = params.slice(offset)
  const injected = state.faults.takeFailure(method)
  if (injected) throw injected
  const db = pool.db
  if (!isAsync) {
    const ctx: CallCtx = {
      state,
      pool,
      db,
      host,
      session,
      task: syncHandle(newRef()),
      method: base,
      local,
    }
    return await spec.run(ctx, args)
  }
  // TaskHelper.make: allowed_operations = [] until the worker reaches cancellable work
  const taskRef = createTask(db, { name_label: method, hostRef: host.ref, cancellable: false })
  const ctx: CallCtx = {
    state,
    pool,
    db,
    host,
    session,
    task: taskHandle(db, taskRef),
    method: base,
    local,
  }
  void (async () => {
    try {
      const asyncInjected = state.faults.takeFailure(base)
      if (asyncInjected) throw asyncInjected
      const value = await spec.run(ctx, args)
      completeTask(db, taskRef, value)
    } catch (e) {
      failTask(db, taskRef, toErrorDescription(e))
    }
  })()
  return taskRef
}
