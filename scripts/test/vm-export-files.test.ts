import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { HashingWriter } from '../src/ops/transfer/hashing-writer.js'
import { backoffMs, isRetriable } from '../src/ops/transfer/retry.js'
import { ManifestStore, formatSums, type ManifestEntry } from '../src/ops/vm-export/manifest.js'
import { compressionOfFile, exportFileName, safeName } from '../src/ops/vm-export/naming.js'
import { createHash } from 'node:crypto'

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

describe('HashingWriter', () => {
  // Chunks of odd sizes, 20 MiB in all: more than the slots hold, so back-pressure is exercised.
  const chunks: Buffer[] = []
  for (let i = 0, size = 1; i < 60; i++, size = (size * 7 + 13) % 900_000) {
    chunks.push(Buffer.alloc(size + 1, i))
  }
  const total = chunks.reduce((s, c) => s + c.length, 0)
  const expected = createHash('sha256')
  for (const c of chunks) expected.update(c)
  const hex = expected.digest('hex')

  it('writes the bytes in order, fsynced, and gives their SHA-256 across slot boundaries', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hashing-writer-'))
    try {
      const file = join(dir, 'out.part')
      await writeFile(file, 'left by a killed run, longer than nothing')
      const writer = await HashingWriter.create(file, { fsync: true })
      for (const c of chunks) await writer.write(c)
      expect(await writer.finish()).toEqual({ bytes: total, sha256: hex })
      const content = await readFile(file)
      expect(content.length).toBe(total)
      expect(createHash('sha256').update(content).digest('hex')).toBe(hex)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('only hashes without a path, and hashes an empty stream', async () => {
    const writer = await HashingWriter.create()
    for (const c of chunks) await writer.write(c)
    expect(await writer.finish()).toEqual({ bytes: total, sha256: hex })
    const empty = await HashingWriter.create()
    expect((await empty.finish()).sha256).toBe(createHash('sha256').digest('hex'))
  })

  it('reports a failed write with its errno code', async () => {
    // /dev/full: every write fails with ENOSPC, as a full disk does.
    const writer = await HashingWriter.create('/dev/full')
    const failure = (async () => {
      for (const c of chunks) await writer.write(c)
      await writer.finish()
    })()
    await expect(failure).rejects.toMatchObject({ code: 'ENOSPC' })
    await writer.close()
  })

  it('stops its worker and closes the file when closed mid-way', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hashing-writer-'))
    try {
      const writer = await HashingWriter.create(join(dir, 'x.part'))
      for (const c of chunks.slice(0, 30)) await writer.write(c)
      await writer.close()
      await expect(writer.write(Buffer.alloc(1))).rejects.toThrow(/closed/)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
