import type { Config } from '../shared/config'
import type { Logger } from '../shared/log'
import type { Paths } from '../shared/paths'
import type { RunAs } from './exec'
import { createProcessManager } from './process-manager'
import type { ServiceManager } from './service-manager'
import { createSystemd } from './systemd'

/** The service manager `config.serviceManager` names. */
export function createServiceManager(config: Config, paths: Paths, log: Logger, runAs?: RunAs): ServiceManager {
  if (config.serviceManager === 'process') {
    return createProcessManager({ paths, host: config.host, port: config.port, log, ...(runAs ? { runAs } : {}) })
  }
  // upkeep.service behind upkeep.socket, as deploy/ defines them; restart() also resets a failed socket.
  return createSystemd()
}
