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
  opts: { realm: string; label: string; kind: TransferKind; description?: string }
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
  const url = to === undefined ? undefined : ctx.pool.hosts.find((h) => h.name === to)?.url
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

/** Throttled task progress: at most every 1% or every second, whichever is rarer... or on demand. */
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
