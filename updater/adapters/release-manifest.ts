import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { writeJsonAtomic } from '../shared/atomic-write'
import type { InstalledFrom } from '../shared/installed-from'

/** `upkeep-release.json` in every built release: what it is and how to start it. */
export interface ReleaseManifest {
  tag: string
  version: string
  commit: string
  serverEntry: string
  /** The path the health step polls (upkeep.json `healthPath`). */
  healthPath?: string
  builtAt: string
  /** How the updater installed it (a rollback to it keeps saying so). */
  installedFrom?: InstalledFrom
}

export const RELEASE_MANIFEST = 'upkeep-release.json'

export async function readReleaseManifest(releaseDir: string): Promise<ReleaseManifest | undefined> {
  try {
    const m = JSON.parse(await readFile(path.join(releaseDir, RELEASE_MANIFEST), 'utf8')) as ReleaseManifest
    return typeof m.tag === 'string' && typeof m.commit === 'string' ? m : undefined
  } catch {
    return undefined
  }
}

export async function writeReleaseManifest(releaseDir: string, m: ReleaseManifest): Promise<void> {
  await writeJsonAtomic(path.join(releaseDir, RELEASE_MANIFEST), m)
}
