import type { IncomingMessage, ServerResponse } from 'node:http'
import type { SimContext } from '../context.js'
import { authenticate, describeError, send401, send500, sendRedirect } from './request.js'
import type { HttpArgs } from './request.js'
import type { TransferKind } from '../transfer-faults.js'
import { transferFaultsOf } from './faults-link.js'

/** A transfer request that passed authentication: its task, and how to end it. */
export type TransferStart = {
  taskRef: string
  /** Fails the task (`TASK_CANCELLED` → cancelled); no-op once the task is finished. */
  fail(e: unknown): void
  /** Logs out an HTTP Basic session; call when the request is over. */
  done(): void
}

/**
 * Common head of the transfer handlers, in xapi's order: credentials (401, failing a given task
 * with SESSION_AUTHENTICATION_FAILED), then the redirect fault (302, before the task is touched),
 * then the task (`task_id` or a new one) with progress 0. Undefined when the response is sent.
 */
export function startTransfer(
  ctx: SimContext,
  req: IncomingMessage,
  res: ServerResponse,
  args: HttpArgs,
  opts: {
    realm: string
    label: string
    kind: TransferKind
    description?: string
    /** The SRs the transfer reads or writes: a host that cannot see them all redirects. */
    srs?: () => string[]
  }
): TransferStart | undefined {
  const given = args.param('task_id')
  const givenTask = given !== undefined && ctx.tasks.get(given) ? given : undefined
  const auth = authenticate(ctx, req, args)
  if (!auth.ok) {
    if (givenTask) ctx.tasks.fail(givenTask, auth.code, auth.params)
    send401(res, opts.realm)
    return undefined
  }
  const done = () => {
    if (auth.basic) ctx.sessions.logout(auth.sessionRef)
  }
  if (given !== undefined && !givenTask) {
    send500(res, ['HANDLE_INVALID', 'task', given])
    done()
    return undefined
  }
  const to = transferFaultsOf(ctx.faults).takeRedirect(opts.kind, ctx.host.name)
  const url =
    to === undefined
      ? storageRedirect(ctx, opts.srs)
      : ctx.pool.hosts.find((h) => h.name === to)?.url
  if (url !== undefined) {
    sendRedirect(res, url, req)
    done()
    return undefined
  }
  const taskRef = givenTask ?? ctx.tasks.create(opts.label, opts.description ?? '')
  ctx.tasks.setProgress(taskRef, 0)
  return {
    taskRef,
    fail(e) {
      const t = ctx.tasks.get(taskRef)
      if (!t || t.status !== 'pending') return
      const [code, ...params] = describeError(e)
      ctx.tasks.fail(taskRef, code!, params)
    },
    done,
  }
}

/** Host refs with an attached PBD for `sr`. */
function hostsSeeing(ctx: SimContext, sr: string): Set<string> {
  const pbds = (ctx.db.get(sr)?.PBDs as string[] | undefined) ?? []
  return new Set(
    pbds
      .map((p) => ctx.db.get(p))
      .flatMap((p) => (p && p.currently_attached !== false ? [p.host as string] : []))
  )
}

/**
 * xapi's storage check: when the receiving host cannot see every SR, the URL of a pool member that
 * can (302 there); undefined when this host can, or when no host can (served here then).
 */
function storageRedirect(ctx: SimContext, srs: (() => string[]) | undefined): string | undefined {
  let needed: string[]
  try {
    needed = srs?.() ?? []
  } catch {
    return undefined // a bad VM/SR argument is reported by the handler itself
  }
  const seeing = needed.map((sr) => hostsSeeing(ctx, sr))
  const sees = (host: string) => seeing.every((s) => s.has(host))
  if (sees(ctx.host.ref)) return undefined
  return ctx.pool.hosts.find((h) => sees(h.ref))?.url
}

/** Task progress setter that writes at most every 1% or once a second (each write is an event). */
export function progressUpdater(ctx: SimContext, taskRef: string): (fraction: number) => void {
  let last = -1
  let at = 0
  return (fraction) => {
    const now = Date.now()
    if (fraction - last < 0.01 && now - at < 1000) return
    if (fraction <= last) return
    last = fraction
    at = now
    ctx.tasks.setProgress(taskRef, Math.min(0.99, fraction))
  }
}
