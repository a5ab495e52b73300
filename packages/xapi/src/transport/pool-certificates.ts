import { X509Certificate } from 'node:crypto'

type Caller = {
  callWith<T>(method: string, params: unknown[], opts: { signal?: AbortSignal }): Promise<T>
}

/**
 * The SHA-256 fingerprints (`AB:CD:…`) of the API certificates of every host of the pool, as
 * the master reports them (`host.get_server_certificate`: the PEM of each host's
 * /etc/xensource/xapi-ssl.pem). xapi makes one self-signed certificate per host, so a pin on
 * the master does not cover the member a transfer is redirected to; the master, whose
 * certificate matched the pin, vouches for them. A host whose certificate cannot be read or
 * parsed is left out (its connections then fail on the pin, as before).
 */
export async function poolCertificateFingerprints(
  client: Caller,
  signal?: AbortSignal
): Promise<string[]> {
  const opts = signal ? { signal } : {}
  const hosts = await client.callWith<string[]>('host.get_all', [], opts)
  const pems = await Promise.all(
    hosts.map((host) =>
      client.callWith<string>('host.get_server_certificate', [host], opts).catch(() => '')
    )
  )
  const fingerprints: string[] = []
  for (const pem of pems) {
    try {
      if (typeof pem === 'string' && pem.includes('BEGIN CERTIFICATE'))
        fingerprints.push(new X509Certificate(pem).fingerprint256)
    } catch {
      // not a certificate: leave that host out
    }
  }
  return fingerprints
}
