import { createWriteStream } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { describe, expect } from 'vitest'
import { exportVm, importVm, tarHeader, tarPadding } from '../src/index.js'
import { it, taskCount, vmNames, vmRef } from './transfer-fixtures.js'

describe('bad archives on import', () => {
  it('truncated: the premature end is reported and nothing is left', async ({
    sim,
    src,
    dst,
    dir,
  }) => {
    const file = join(dir, 'vm.xva')
    const exported = await exportVm(src, vmRef(sim, 'halted'))
    await Promise.all([pipeline(exported.body, createWriteStream(file)), exported.task])
    const whole = await readFile(file)
    const cut = whole.subarray(0, Math.floor(whole.length / 2))
    const error = await importVm(dst, Readable.from([cut]), { length: cut.length }).catch(
      (e: unknown) => e
    )
    expect(error).toMatchObject({ name: 'XapiError', code: 'IMPORT_ERROR_PREMATURE_EOF' })
    expect(vmNames(sim, 1)).toEqual([])
    expect(taskCount(sim, 1)).toBe(0)
  })

  it('a source shorter than `length`: XAPI_CLIENT_LENGTH_MISMATCH, the task cancelled', async ({
    sim,
    src,
    dst,
    dir,
  }) => {
    const file = join(dir, 'vm.xva')
    const exported = await exportVm(src, vmRef(sim, 'halted'))
    await Promise.all([pipeline(exported.body, createWriteStream(file)), exported.task])
    const whole = await readFile(file)
    const error = await importVm(dst, Readable.from([whole.subarray(0, 100_000)]), {
      length: whole.length,
    }).catch((e: unknown) => e)
    expect(error).toMatchObject({ code: 'XAPI_CLIENT_LENGTH_MISMATCH' })
    expect((error as Error).message).toBe(
      `import source gave 100000 bytes where \`length\` said ${whole.length}`
    )
    await expect.poll(() => vmNames(sim, 1)).toEqual([])
    expect(taskCount(sim, 1)).toBe(0)
  })

  it('wrong first entry: IMPORT_ERROR_UNEXPECTED_FILE', async ({ sim, dst }) => {
    const text = Buffer.from('not an ova.xml\n')
    const archive = Buffer.concat([
      tarHeader('README', text.length),
      text,
      Buffer.alloc(tarPadding(text.length)),
      Buffer.alloc(1024),
    ])
    const error = await importVm(dst, Readable.from([archive])).catch((e: unknown) => e)
    expect(error).toMatchObject({
      code: 'IMPORT_ERROR_UNEXPECTED_FILE',
      params: ['ova.xml', 'README'],
    })
    expect(vmNames(sim, 1)).toEqual([])
  })

  it('bad checksum: refused without force, imported with force', async ({ sim, src, dst, dir }) => {
    const file = join(dir, 'vm.xva')
    const exported = await exportVm(src, vmRef(sim, 'halted'))
    await Promise.all([pipeline(exported.body, createWriteStream(file)), exported.task])
    const bytes = await readFile(file)
    // The first checksum entry's data: 16 hex digits right after its 512-byte header.
    const name = bytes.indexOf('.xxhash')
    const header = name - (name % 512)
    expect(bytes.toString('latin1', header, header + 4)).toBe('Ref:')
    bytes[header + 512] = bytes[header + 512] === 0x30 ? 0x31 : 0x30
    const length = bytes.length
    const error = await importVm(dst, Readable.from([bytes]), { length }).catch((e: unknown) => e)
    expect(error).toMatchObject({
      code: 'IMPORT_ERROR',
      message: expect.stringMatching(/checksum failed/),
    })
    expect(vmNames(sim, 1)).toEqual([])
    const vms = await importVm(dst, Readable.from([bytes]), { length, force: true })
    expect(vms).toHaveLength(1)
    expect(taskCount(sim, 1)).toBe(0)
  })
})
