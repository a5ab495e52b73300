// `npm run build`: the operator scripts built into scripts/dist (see build/bundle.ts).
import { relative } from 'node:path'
import { bundleScripts } from './bundle.js'

for (const file of await bundleScripts()) {
  process.stdout.write(`built ${relative(process.cwd(), file)}\n`)
}
