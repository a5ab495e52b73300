import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { backoffMs, isRetriable } from '../src/ops/transfer/retry.js'
import { ManifestStore, formatSums, type ManifestEntry } from '../src/ops/vm-export/manifest.js'
import { compressionOfFile, exportFileName, safeName } from '../src/ops/vm-export/naming.js'

describe('export file names', () => {
  it.each([
    ['web-01', 'web-01'],
    ['db/primary: prod', 'db_primary_prod'],
    ['Élan vital', 'Elan_vital'],
    ['../../etc/passwd', 'etc_passwd'],
    ['.hidden', 'hidden'],
    ['日本語', 'vm'],
    ['', 'vm'],
    ['a'.repeat(200), 'a'.repeat(80)],
  ])('safeName(%j) is %j', (label, expected) => {
    expect(safeName(label)).toBe(expected)
  })

  it('names a file after the VM, its uuid and the compression', () => {
    const uuid = '9b087ac1-3548-4dfa-9389-58b1a40585a0'
    expect(exportFileName('web 01', uuid, 'none')).toBe(`web_01_${uuid}.xva`)
    expect(exportFileName('web 01', uuid, 'gzip')).toBe(`web_01_${uuid}.xva.gz`)
    expect(exportFileName('web 01', uuid, 'zstd')).toBe(`web_01_${uuid}.xva.zst`)
    expect(compressionOfFile(`x_${uuid}.xva.zst`)).toBe('zstd')
    expect(compressionOfFile('x.xva.part')).toBeUndefined()
  })
})

describe('manifest', () => {
  const entry = (file: string, sha256: string): ManifestEntry => ({
    uuid: 'u',
    name: 'n',
    file,
    bytes: 3,
    sha256,
    compression: 'none',
    metadataOnly: false,
    time: '2026-01-01T00:00:00.000Z',
    durationMs: 1,
    source: 'vm',
    pool: { uuid: 'p', name: 'pool' },
    record: {},
  })

  it('SHA256SUMS is in the format of sha256sum (two spaces, one line per file)', () => {
    expect(formatSums([entry('a.xva', 'f'.repeat(64)), entry('b.xva', '0'.repeat(64))])).toBe(
      `${'f'.repeat(64)}  a.xva\n${'0'.repeat(64)}  b.xva\n`
    )
  })

  it('is written atomically, reloaded, and an unreadable one is ignored with a warning', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'manifest-'))
    try {
      const { store } = await ManifestStore.load(dir)
      await Promise.all([
        store.put(entry('b.xva', 'b'.repeat(64))),
        store.put(entry('a.xva', 'a'.repeat(64))),
      ])
      const again = await ManifestStore.load(dir)
      expect(again.warning).toBeUndefined()
      expect(again.store.entries().map((e) => e.file)).toEqual(['a.xva', 'b.xva'])
      expect(await readFile(join(dir, 'SHA256SUMS'), 'utf8')).toBe(
        `${'a'.repeat(64)}  a.xva\n${'b'.repeat(64)}  b.xva\n`
      )
      await writeFile(join(dir, 'manifest.json'), '{ not json')
      const broken = await ManifestStore.load(dir)
      expect(broken.warning).toMatch(/not a valid manifest/)
      expect(broken.store.entries()).toEqual([])
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})

describe('retries', () => {
  it('retries transfer and verification failures, not XAPI or local disk errors', () => {
    const coded = (code: string) => Object.assign(new Error(code), { code })
    expect(isRetriable(coded('XAPI_CLIENT_TRANSPORT'))).toBe(true)
    expect(isRetriable(coded('TRANSFER_BROKEN'))).toBe(true)
    expect(isRetriable(coded('XVA_VERIFICATION_FAILED'))).toBe(true)
    expect(isRetriable(coded('ECONNRESET'))).toBe(true)
    expect(isRetriable(coded('ENOSPC'))).toBe(false)
    expect(
      isRetriable(Object.assign(new Error('x'), { code: 'VM_BAD_POWER_STATE', params: [] }))
    ).toBe(false)
    expect(isRetriable(new Error('no code'))).toBe(false)
  })

  it('backs off exponentially within ±20 %, capped', () => {
    for (let i = 0; i < 50; i++) {
      expect(backoffMs(1, 1000)).toBeGreaterThanOrEqual(800)
      expect(backoffMs(1, 1000)).toBeLessThanOrEqual(1200)
      expect(backoffMs(3, 1000)).toBeGreaterThanOrEqual(3200)
      expect(backoffMs(3, 1000)).toBeLessThanOrEqual(4800)
      expect(backoffMs(20, 1000, 30_000)).toBeLessThanOrEqual(36_000)
    }
  })
})
