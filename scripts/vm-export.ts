// Back VMs up to verified XVA files with a manifest, resumable: see scripts/README.md#vm-export.
import { vmExportCommand } from './src/commands/vm-export.js'
import { runCommand } from './src/lib/run-command.js'
import { tuneGcForStreaming } from './src/lib/tune-gc.js'

tuneGcForStreaming()

const code = await runCommand(vmExportCommand)
process.stdout.write('', () => process.exit(code))
