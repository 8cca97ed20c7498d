import { readdir, readFile } from 'node:fs/promises'
import path from 'node:path'
import type { AppDefinition } from '../shared/apps/definition'
import { UpdateError } from '../shared/errors'

// The systemd side of adopting an app, as drop-ins beside the units (never edits of them):
// - upkeep-updater.service and upkeep-recover.service run with ProtectSystem=strict, and the
//   workers they start inherit that: every app's checkout, data, backups and state must be named
//   in ReadWritePaths=. One drop-in for all apps, made again from every definition each time.
// - each app unit starts after upkeep-recover.service, so an update a power cut interrupted is
//   settled before the app starts.

export const UPDATER_UNITS = ['upkeep-updater.service', 'upkeep-recover.service'] as const
export const APPS_DROP_IN = '50-apps.conf'
export const UNIT_DROP_IN = '50-upkeep.conf'
/** The first line of an app unit's drop-in: `remove` finds them by it, even when the definition is gone or broken. */
const MARKER = '# upkeep app: '

/** The paths one app's update writes, as the drop-in names them. */
export interface AppWritePaths {
  name: string
  paths: string[]
}

/** A path as a unit file takes it: `%` is a specifier there; a space or quote would split or change it. Pure. */
export function unitFilePath(p: string): string {
  if (/[\s"'\\;]/.test(p)) {
    throw new UpdateError('BAD_CONFIG', `${JSON.stringify(p)} cannot be named in a unit file (it holds a space, quote, backslash or ";")`, { hint: 'Use paths without them for the checkout, data and backups.' })
  }
  return p.replaceAll('%', '%%')
}

/** The drop-in of the updater units: `ReadWritePaths=-…` per app, `-` so a missing path is no error. Pure. */
export function renderAppsDropIn(apps: AppWritePaths[]): string {
  const lines = [
    '# Written by `upkeep app add` and `upkeep app remove` from the app definitions; made again',
    '# each time, so edits here are lost. The updater runs with ProtectSystem=strict: these are the',
    "# paths each app's update (run as that app's user) writes: checkout, data, backups, state.",
    '[Service]',
  ]
  for (const a of [...apps].sort((x, y) => x.name.localeCompare(y.name))) {
    lines.push(`# ${a.name}`, `ReadWritePaths=${[...new Set(a.paths)].map((p) => `-${unitFilePath(p)}`).join(' ')}`)
  }
  return lines.join('\n') + '\n'
}

/** The drop-in of one app unit. Pure. */
export function renderUnitDropIn(app: string): string {
  return [
    `${MARKER}${app}`,
    '# Written by `upkeep app add`; `upkeep app remove` deletes it. An update a power cut',
    '# interrupted is settled (upkeep recover --boot) before this unit starts.',
    '[Unit]',
    'After=upkeep-recover.service',
    '',
  ].join('\n')
}

/** The app a unit drop-in was written for, or undefined when it is not one of ours. Pure. */
export function dropInApp(text: string): string | undefined {
  return text.startsWith(MARKER) ? text.slice(MARKER.length).split('\n')[0]!.trim() : undefined
}

/** Where an app's update writes. `home`: the user's home, when the units can see it (build caches live there). */
export function appWritePaths(def: AppDefinition, stateDir: string, home: string | undefined): AppWritePaths {
  return { name: def.name, paths: [def.checkout, ...def.data.paths, ...(def.data.backupDir ? [def.data.backupDir] : []), stateDir, ...(home ? [home] : [])] }
}

/** Unit drop-ins of `app` now in `systemdDir`: `<unit>.d/50-upkeep.conf` files starting with its marker. */
export async function findUnitDropIns(systemdDir: string, app: string): Promise<string[]> {
  const found: string[] = []
  for (const d of await readdir(systemdDir).catch(() => [] as string[])) {
    if (!d.endsWith('.service.d')) continue
    const file = path.join(systemdDir, d, UNIT_DROP_IN)
    const text = await readFile(file, 'utf8').catch(() => undefined)
    if (text !== undefined && dropInApp(text) === app) found.push(file)
  }
  return found.sort()
}
