// Shut down the VMs of a host cleanly (UPS/systemd hook): see scripts/README.md#host-shutdown.
import { hostShutdownCommand } from './src/commands/host-shutdown.js'
import { runCommand } from './src/lib/run-command.js'

const code = await runCommand(hostShutdownCommand)
process.stdout.write('', () => process.exit(code))
