// Restore XVA files, each verified locally first: see scripts/README.md#vm-import.
import { vmImportCommand } from './src/commands/vm-import.js'
import { runCommand } from './src/lib/run-command.js'
import { tuneGcForStreaming } from './src/lib/tune-gc.js'

tuneGcForStreaming()

const code = await runCommand(vmImportCommand)
process.stdout.write('', () => process.exit(code))
