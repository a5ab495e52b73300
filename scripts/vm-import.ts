import { vmImportCommand } from './src/commands/vm-import.js'
import { runCommand } from './src/lib/run-command.js'

process.exit(await runCommand(vmImportCommand))
