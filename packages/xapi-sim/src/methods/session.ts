import { XapiFailure } from '../errors.js'
import { defineMethod, type CallCtx } from '../rpc/registry.js'
import type { SimSession } from '../state.js'

function sessionRecord(s: SimSession) {
  return {
    uuid: s.uuid,
    this_host: s.hostRef,
    this_user: 'OpaqueRef:NULL',
    last_active: s.lastActive,
    pool: false,
    other_config: {},
    is_local_superuser: true,
    subject: 'OpaqueRef:NULL',
    validation_time: s.created,
    auth_user_sid: '',
    auth_user_name: s.user,
    rbac_permissions: [],
    tasks: [],
    parent: 'OpaqueRef:NULL',
    originator: s.originator,
    client_certificate: false,
  }
}

function self(ctx: CallCtx, ref: unknown): SimSession {
  const s = ctx.state.sessions.get(String(ref))
  if (!s || s.pool !== ctx.pool) throw new XapiFailure('HANDLE_INVALID', ['session', String(ref)])
  return s
}

/**
 * xapi_session.ml: over the local unix socket (`Context.preauth = root`) any credentials are
 * trusted; elsewhere a bad password is answered after a 5 s pause (against brute force; scaled
 * here) with SESSION_AUTHENTICATION_FAILED [uname, msg].
 */
async function login(ctx: CallCtx, user: unknown, pwd: unknown, originator = '') {
  if (ctx.local) return ctx.state.createSession(ctx.pool, originator, String(user)).ref
  try {
    return ctx.state.login(ctx.pool, user, pwd, originator).ref
  } catch (e) {
    await ctx.state.sleep(5000)
    throw e
  }
}

// session.login_with_password(uname, pwd, version = "1.1", originator = "")
defineMethod('session.login_with_password', {
  arity: [4, 3, 2],
  session: false,
  run: (ctx, [user, pwd, _version, originator]) =>
    login(ctx, user, pwd, typeof originator === 'string' ? originator : ''),
})

// Emergency-mode login on any host (local DB): accepted on supporters too.
defineMethod('session.slave_local_login_with_password', {
  arity: [2],
  session: false,
  anyHost: true,
  run: (ctx, [user, pwd]) => login(ctx, user, pwd),
})

defineMethod('session.logout', {
  arity: [0],
  run: (ctx) => void ctx.state.logout(ctx.session!.ref),
})
defineMethod('session.local_logout', {
  arity: [0],
  anyHost: true,
  run: (ctx) => void ctx.state.logout(ctx.session!.ref),
})

const FIELDS = [
  'uuid',
  'this_host',
  'this_user',
  'last_active',
  'pool',
  'other_config',
  'is_local_superuser',
  'subject',
  'validation_time',
  'auth_user_sid',
  'auth_user_name',
  'rbac_permissions',
  'tasks',
  'parent',
  'originator',
] as const
for (const f of FIELDS) {
  defineMethod(`session.get_${f}`, {
    arity: [1],
    run: (ctx, [ref]) => sessionRecord(self(ctx, ref))[f],
  })
}
defineMethod('session.get_record', {
  arity: [1],
  run: (ctx, [ref]) => sessionRecord(self(ctx, ref)),
})
defineMethod('session.get_by_uuid', {
  arity: [1],
  run(ctx, [uuid]) {
    for (const s of ctx.state.sessions.values())
      if (s.uuid === uuid && s.pool === ctx.pool) return s.ref
    throw new XapiFailure('UUID_INVALID', ['session', String(uuid)])
  },
})
defineMethod('session.get_all_subject_identifiers', { arity: [0], run: () => [] })
