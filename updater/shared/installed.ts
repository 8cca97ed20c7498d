import { writeJsonAtomic, type AtomicWriteOptions } from './atomic-write'
import { readDataFile } from './data-file'
import type { InstalledFrom } from './installed-from'

/**
 * `update-installed.json` in an app's state: what the updater last left running (after an
 * update, a rollback, or adopting the app). The server shows it as the app's version; for an app
 * that does not report its version this is the only place that knows it.
 */
export interface Installed {
  version: string
  tag?: string
  commit?: string
  /** How the running release was installed, when the updater installed it. */
  installedFrom?: InstalledFrom
  at: string
}

export async function readInstalled(file: string): Promise<Installed | undefined> {
  try {
    const v = JSON.parse((await readDataFile(file, { maxBytes: 4096 })) ?? '') as Installed
    return typeof v.version === 'string' ? v : undefined
  } catch {
    return undefined
  }
}

/** `owner`: root recording what runs (`upkeep app add`) gives the file to the app's user. */
export async function writeInstalled(file: string, value: Installed, opts: Pick<AtomicWriteOptions, 'owner'> = {}): Promise<void> {
  // World-readable: the server (another user) shows it.
  await writeJsonAtomic(file, value, { mode: 0o644, ...opts })
}
