// Starts an app the way the process service manager does, as whoever runs this script (tests run
// it as the app's user): node --import tsx test/support/start-app.ts '<ProcessManagerOptions JSON>'
import { createProcessManager, type ProcessManagerOptions } from '../../updater/adapters/process-manager'
import { silentLogger } from '../../updater/shared/log'

const opts = JSON.parse(process.argv[2]!) as Omit<ProcessManagerOptions, 'log'>
await createProcessManager({ ...opts, log: silentLogger() }).start()
