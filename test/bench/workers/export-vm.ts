/** Bench worker: one verified `exportVm` into a file (or /dev/null); prints bytes, time and peak RSS. */
import { createWriteStream } from 'node:fs'
import { pipeline } from 'node:stream/promises'
import { connect, exportVm, type Ref } from '@xapi-ops/xapi'

const input = JSON.parse(process.argv[2]!) as {
  url: string
  user: string
  password: string
  vm: string
  out: string
  compression?: 'none' | 'gzip' | 'zstd'
}
const client = await connect({ url: input.url, user: input.user, password: input.password })
try {
  const [vm] = await client.call<Ref<'VM'>[]>('VM.get_by_name_label', input.vm)
  if (!vm) throw new Error(`no VM named ${input.vm}`)
  const t0 = performance.now()
  let bytes = 0
  const { body, task } = await exportVm(client, vm, {
    compression: input.compression ?? 'none',
    onProgress: (p) => (bytes = p.bytes),
  })
  await Promise.all([
    pipeline(body, createWriteStream(input.out, { highWaterMark: 1024 * 1024 })),
    task,
  ])
  const ms = performance.now() - t0
  console.log(JSON.stringify({ bytes, ms, maxRssMiB: process.resourceUsage().maxRSS / 1024 }))
} finally {
  await client.close()
}
