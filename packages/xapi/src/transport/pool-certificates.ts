import { X509Certificate } from 'node:crypto'

type Caller = {
  callWith<T>(method: string, params: unknown[], opts: { signal?: AbortSignal }): Promise<T>
}

/** A pool member's API certificate, and the address it serves it on. */
export type PoolCertificate = {
  /** The host's `address` (its management IP: where xapi redirects to it). */
  readonly address: string
  /** SHA-256 fingerprint, `AB:CD:…`. */
  readonly fingerprint: string
}

/**
 * The API certificates of every host of the pool, as the master reports them
 * (`host.get_server_certificate`: the PEM of each host's /etc/xensource/xapi-ssl.pem), each with
 * the host's address. xapi makes one self-signed certificate per host, so a pin on the master
 * does not cover the member a transfer is redirected to; the master, whose certificate matched
 * the pin, vouches for them, each for its own host's address only. A host whose certificate or
 * address cannot be read is left out (its connections then fail on the pin, as before).
 */
export async function poolCertificates(
  client: Caller,
  signal?: AbortSignal
): Promise<PoolCertificate[]> {
  const opts = signal ? { signal } : {}
  const hosts = await client.callWith<string[]>('host.get_all', [], opts)
  const read = (method: string, host: string) =>
    client.callWith<string>(method, [host], opts).catch(() => '')
  const found = await Promise.all(
    hosts.map(async (host) => {
      const [address, pem] = await Promise.all([
        read('host.get_address', host),
        read('host.get_server_certificate', host),
      ])
      return { address, pem }
    })
  )
  const out: PoolCertificate[] = []
  for (const { address, pem } of found) {
    if (typeof address !== 'string' || address === '') continue
    try {
      if (typeof pem === 'string' && pem.includes('BEGIN CERTIFICATE'))
        out.push({ address, fingerprint: new X509Certificate(pem).fingerprint256 })
    } catch {
      // not a certificate: leave that host out
    }
  }
  return out
}
