/**
 * Where an HTTP action goes: `base` is the origin of a pool member (`https://host:port`) or the
 * dom0 socket (`unix:/var/lib/xcp/xapi`); `path` is the request target (path and query).
 */
export type Target = { readonly base: URL; readonly path: string }

/**
 * Builds the target of an XAPI HTTP action (`/export`, `/import`, …) on `base` with `query`;
 * entries whose value is `undefined` are left out. `session_id` and `task_id` go in the query
 * (not in a cookie) because xapi copies the query, and only the query, into its 302s.
 */
export function actionTarget(
  base: string | URL,
  path: string,
  query: Record<string, string | undefined>
): Target {
  const baseUrl = new URL(base)
  const url = new URL(path, 'http://localhost')
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined) url.searchParams.set(key, value)
  }
  const origin = baseUrl.protocol === 'unix:' ? baseUrl : new URL(baseUrl.origin)
  return { base: origin, path: `${url.pathname}${url.search}` }
}

/** The target a `Location` header points to, relative to `from`. Throws a `TypeError` if invalid. */
export function resolveLocation(from: Target, location: string): Target {
  const local = from.base.protocol === 'unix:'
  const url = new URL(
    location,
    local ? `http://localhost${from.path}` : new URL(from.path, from.base)
  )
  if (local && url.host === 'localhost' && !/^[a-z][a-z0-9+.-]*:/i.test(location)) {
    return { base: from.base, path: `${url.pathname}${url.search}` }
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new TypeError(`a redirect to a ${url.protocol} URL`)
  }
  return { base: new URL(url.origin), path: `${url.pathname}${url.search}` }
}

/** `target` as it may appear in messages: never the query, so `session_id` is never shown. */
export function describeTarget(target: Target): string {
  const pathname = target.path.replace(/\?.*$/s, '')
  if (target.base.protocol === 'unix:') return `unix:${target.base.pathname}${pathname}`
  return `${target.base.origin}${pathname}`
}

/** Host name for sockets and TLS SNI: IPv6 literals lose their brackets. */
export function socketHost(url: URL): string {
  const host = url.hostname
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host
}

/** The port of `url`, or the default of its scheme. */
export function socketPort(url: URL): number {
  if (url.port !== '') return Number(url.port)
  return url.protocol === 'https:' ? 443 : 80
}
