import { execFile } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

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
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      keyPath,
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
