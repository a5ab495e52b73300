// Migrate VMs between pools, planned and resumable: see scripts/README.md#vm-migrate.
import { vmMigrateCommand } from './src/commands/vm-migrate.js'
import { runCommand } from './src/lib/run-command.js'
import { tuneGcForStreaming } from './src/lib/tune-gc.js'

tuneGcForStreaming()

const code = await runCommand(vmMigrateCommand)
process.stdout.write('', () => process.exit(code))
