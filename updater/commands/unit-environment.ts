import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { parseEnvironment } from '../adopt/units'
import { CONFIG_VARIABLES } from '../broker/spawn-worker'

/**
 * An operator's root shell on an installed host has none of the units' settings: `upkeep --app
 * notes update` would then take the process manager and the wrong directories. So, as root on a
 * systemd host where upkeep-updater.service is installed (and not inside a unit, which has its
 * own), every configuration variable the shell leaves unset is taken from that unit's
 * `Environment=`, and the service manager is systemd.
 */
export function adoptUnitEnvironment(env: NodeJS.ProcessEnv = process.env): void {
  if (process.getuid?.() !== 0 || env.INVOCATION_ID || !existsSync('/run/systemd/system')) return
  let show: string
  try {
    show = execFileSync('systemctl', ['show', '-p', 'LoadState', '-p', 'Environment', 'upkeep-updater.service'], { encoding: 'utf8', timeout: 30_000, env: { ...env, SYSTEMD_PAGER: '', LC_ALL: 'C' }, stdio: ['ignore', 'pipe', 'ignore'] })
  } catch {
    return
  }
  if (!/^LoadState=loaded$/m.test(show)) return
  const unit = parseEnvironment(/^Environment=(.*)$/m.exec(show)?.[1]?.trim() ?? '')
  for (const k of CONFIG_VARIABLES) if (!env[k]?.trim() && unit[k]) env[k] = unit[k]
  if (!env.UPKEEP_SERVICE_MANAGER?.trim()) env.UPKEEP_SERVICE_MANAGER = 'systemd'
}
