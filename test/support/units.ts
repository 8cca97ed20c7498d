import { readFileSync } from 'node:fs'
import path from 'node:path'
import { repoRoot } from './paths'

/** The unit templates in deploy/, in the order install.sh installs them. */
export const UNIT_TEMPLATES = ['upkeep.socket', 'upkeep.service', 'upkeep-updater.path', 'upkeep-updater.service', 'upkeep-recover.service'] as const
export type UnitName = (typeof UNIT_TEMPLATES)[number]

export interface UnitValues {
  NODE: string
  APP_DIR: string
  DATA_DIR: string
  BACKUP_DIR: string
  USER: string
  GROUP: string
  HOME: string
  HOST: string
  PORT: string
  LISTEN: string
  PATH: string
}

/** The values install.sh renders for an install in `dir` (its defaults for user, home and data). */
export function installValues(opts: { dir: string; port: number; host?: string; node?: string }): UnitValues {
  const host = opts.host ?? '127.0.0.1'
  return {
    NODE: opts.node ?? '/usr/bin/node',
    APP_DIR: opts.dir,
    DATA_DIR: `${opts.dir}/data`,
    BACKUP_DIR: `${opts.dir}/backups`,
    USER: 'upkeep',
    GROUP: 'upkeep',
    HOME: '/var/lib/upkeep',
    HOST: host,
    PORT: String(opts.port),
    LISTEN: host.includes(':') ? `[${host}]:${opts.port}` : `${host}:${opts.port}`,
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  }
}

/** A template with its {{KEY}} placeholders filled in, as install.sh does; throws on an unknown one. */
export function renderUnit(name: UnitName, values: UnitValues): string {
  const template = readFileSync(path.join(repoRoot, 'deploy', name), 'utf8')
  return template.replace(/\{\{([A-Z_]+)\}\}/g, (_, key: string) => {
    const v = (values as unknown as Record<string, string | undefined>)[key]
    if (v === undefined) throw new Error(`deploy/${name}: unknown placeholder {{${key}}}`)
    return v
  })
}

/** `Key=value` lines of a unit, comments and blank lines left out. */
export function directives(unit: string): { key: string; value: string }[] {
  return unit
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#') && !l.startsWith(';') && !l.startsWith('['))
    .map((l) => ({ key: l.slice(0, l.indexOf('=')), value: l.slice(l.indexOf('=') + 1) }))
}
