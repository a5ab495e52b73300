/** Bench worker: one verified export into a file (`exportVmToFile`); prints bytes, time and peak RSS. */
import { connect, exportVmToFile, type Ref } from '@xapi-ops/xapi'

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
  // exportVm verified in flight, into a file (renamed into place once the task succeeded).
  await exportVmToFile(client, vm, input.out, {
    compression: input.compression ?? 'none',
    onProgress: (p) => (bytes = p.bytes),
  })
  const ms = performance.now() - t0
  console.log(JSON.stringify({ bytes, ms, maxRssMiB: process.resourceUsage().maxRSS / 1024 }))
} finally {
  await client.close()
}
