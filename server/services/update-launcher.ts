import { spawn } from 'node:child_process'
import { closeSync, mkdirSync, openSync } from 'node:fs'
import path from 'node:path'
import type { Config } from '../../updater/shared/config'
import type { Logger } from '../../updater/shared/log'

/** Starts the updater's internal commands. Under systemd the .path unit does it, so this is a no-op there. */
export interface UpdateLauncher {
  launch(command: 'apply-request' | 'recover'): void
}

export interface LauncherOptions {
  config: Config
  log: Logger
  /** How to run `upkeep`: `[node, …/upkeep.mjs]` built, `[node, …/updater/bin.mjs]` from the sources. */
  updaterArgv: string[]
}

/**
 * Without systemd (`process` service manager) the updater is started here, detached in a
 * session of its own, so the restart it causes does not take it down. Its output goes to
 * `data/logs/updater.log`. Under systemd the server never starts the updater:
 * `upkeep-updater.path` sees `data/update-request.json` and starts `upkeep-updater.service`.
 */
export function createUpdateLauncher(opts: LauncherOptions): UpdateLauncher {
  const { config, log } = opts
  if (config.serviceManager !== 'process') return { launch: () => {} }
  const logs = path.join(config.dataDir, 'logs')
  return {
    launch(command) {
      // The updater's output goes to data/logs/updater.log; a log that cannot be opened must not stop the update.
      let fd: number | 'ignore' = 'ignore'
      try {
        mkdirSync(logs, { recursive: true })
        fd = openSync(path.join(logs, 'updater.log'), 'a', 0o640)
      } catch (err) {
        log.warn({ err }, 'cannot open the updater log; its output is lost (the status file still has the steps)')
      }
      const [file, ...args] = opts.updaterArgv
      const child = spawn(file!, [...args, command], {
        cwd: config.appDir,
        // The updater reads the same configuration; the checkout and data paths are pinned.
        env: { ...process.env, APP_DIR: config.appDir, DATA_DIR: config.dataDir, BACKUP_DIR: config.backupDir },
        detached: true,
        stdio: ['ignore', fd, fd],
      })
      if (typeof fd === 'number') closeSync(fd)
      child.on('error', (err) => log.error({ err, command }, 'cannot start the updater'))
      child.unref()
      log.info({ command, pid: child.pid }, 'launched updater')
    },
  }
}
