import { vmExportCommand } from './src/commands/vm-export.js'
import { runCommand } from './src/lib/run-command.js'

process.exit(await runCommand(vmExportCommand))
