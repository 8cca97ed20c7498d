import type { Config } from '../shared/config'
import { UpdateError } from '../shared/errors'
import type { Logger } from '../shared/log'
import type { Paths } from '../shared/paths'
import type { RunAs } from './exec'
import { createProcessManager } from './process-manager'
import type { ServiceManager } from './service-manager'

/** The service manager `config.serviceManager` names. */
export function createServiceManager(config: Config, paths: Paths, log: Logger, runAs?: RunAs): ServiceManager {
  if (config.serviceManager === 'process') {
    return createProcessManager({ paths, host: config.host, port: config.port, log, ...(runAs ? { runAs } : {}) })
  }
  // LEAD: wire in the systemd implementation at merge: `return createSystemd({ ... })` from ./systemd (issue 5).
  throw new UpdateError('BAD_CONFIG', 'the systemd service manager is not available in this build', {
    hint: 'Set UPKEEP_SERVICE_MANAGER=process to restart the server as a plain process.',
  })
}
