/** Bench worker: one `importVm` of a file with its Content-Length; prints time and peak RSS. */
import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { connect, importVm } from '@xapi-ops/xapi'

const input = JSON.parse(process.argv[2]!) as {
  url: string
  user: string
  password: string
  file: string
}
const client = await connect({ url: input.url, user: input.user, password: input.password })
try {
  const { size } = await stat(input.file)
  const t0 = performance.now()
  const refs = await importVm(
    client,
    createReadStream(input.file, { highWaterMark: 1024 * 1024 }),
    {
      length: size,
    }
  )
  const ms = performance.now() - t0
  for (const ref of refs) await client.call('VM.destroy', ref)
  console.log(JSON.stringify({ bytes: size, ms, maxRssMiB: process.resourceUsage().maxRSS / 1024 }))
} finally {
  await client.close()
}
