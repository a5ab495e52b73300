import { execFile } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

/** `openssl req` arguments for a new unencrypted P-256 key written to `path`. */
const newKey = (path: string) => [
  '-newkey',
  'ec',
  '-pkeyopt',
  'ec_paramgen_curve:prime256v1',
  '-nodes',
  '-keyout',
  path,
]

/** A self-signed certificate for 127.0.0.1 (made with `openssl`, Node has no X.509 writer). */
export async function makeSelfSignedCertificate(): Promise<{
  key: string
  cert: string
  fingerprint: string
}> {
  const dir = await mkdtemp(join(tmpdir(), 'xapi-sim-tls-'))
  try {
    const keyPath = join(dir, 'key.pem')
    const certPath = join(dir, 'cert.pem')
    await run('openssl', [
      'req',
      '-x509',
      ...newKey(keyPath),
      '-out',
      certPath,
      '-days',
      '3650',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
    ])
    const [key, cert] = await Promise.all([readFile(keyPath, 'utf8'), readFile(certPath, 'utf8')])
    return { key, cert, fingerprint: new X509Certificate(cert).fingerprint256 }
  } catch (e) {
    throw new Error(
      `could not make a self-signed certificate with openssl: ${(e as Error).message}`,
      { cause: e }
    )
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

/**
 * A certificate for one host, signed by `issuer` (the simulator's own certificate, which is a
 * CA): xapi makes one self-signed certificate per host, so pool members do not share a pin,
 * while one `--ca` file still trusts them all here.
 */
export async function makeHostCertificate(
  issuer: { key: string; cert: string },
  name: string
): Promise<{ key: string; cert: string; fingerprint: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'xapi-sim-tls-'))
  try {
    const paths = {
      caKey: join(dir, 'ca.key'),
      caCert: join(dir, 'ca.pem'),
      key: join(dir, 'key.pem'),
      csr: join(dir, 'host.csr'),
      cert: join(dir, 'cert.pem'),
      ext: join(dir, 'ext.cnf'),
    }
    await Promise.all([
      writeFile(paths.caKey, issuer.key, { mode: 0o600 }),
      writeFile(paths.caCert, issuer.cert),
      writeFile(paths.ext, 'subjectAltName=IP:127.0.0.1,DNS:localhost\n'),
    ])
    await run('openssl', [
      'req',
      '-new',
      ...newKey(paths.key),
      '-out',
      paths.csr,
      '-subj',
      `/CN=127.0.0.1/O=${name.replace(/[^\w.-]/g, '_')}`,
    ])
    await run('openssl', [
      'x509',
      '-req',
      '-in',
      paths.csr,
      '-CA',
      paths.caCert,
      '-CAkey',
      paths.caKey,
      '-set_serial',
      String(Date.now()),
      '-days',
      '3650',
      '-extfile',
      paths.ext,
      '-out',
      paths.cert,
    ])
    const [key, cert] = await Promise.all([
      readFile(paths.key, 'utf8'),
      readFile(paths.cert, 'utf8'),
    ])
    return { key, cert, fingerprint: new X509Certificate(cert).fingerprint256 }
  } catch (e) {
    throw new Error(`could not make a host certificate with openssl: ${(e as Error).message}`, {
      cause: e,
    })
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}
