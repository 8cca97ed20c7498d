import { existsSync } from 'node:fs'
import path from 'node:path'
import type { Config } from './config'

/** Where everything lives; DESIGN.md "On disk". Pure: derived from the config only. */
export interface Paths {
  appDir: string
  dataDir: string
  backupDir: string
  /** Symlink to the live build. */
  current: string
  /** Symlink to the previous build, kept for rollback. */
  serverBak: string
  /** Upkeep's own working area inside the checkout. */
  upkeepDir: string
  releases: string
  release(tag: string): string
  stagingRoot: string
  staging(tag: string): string
  /** Where the updater copies its own bundle before it runs, so a checkout cannot change it mid-run. */
  updaterRunDir: string
  journal: string
  status: string
  history: string
  request: string
  settings: string
  releaseCache: string
  /** The admin password's scrypt hash (0600). */
  adminPassword: string
  /** Admin sessions: hashes of their tokens (0600). */
  sessions: string
  lock: string
  pidFile: string
  logs: string
}

export function createPaths(config: Pick<Config, 'appDir' | 'dataDir' | 'backupDir'>): Paths {
  const { appDir, dataDir, backupDir } = config
  const upkeepDir = path.join(appDir, '.upkeep')
  const releases = path.join(upkeepDir, 'releases')
  const stagingRoot = path.join(upkeepDir, 'staging')
  return {
    appDir,
    dataDir,
    backupDir,
    current: path.join(appDir, 'current'),
    serverBak: path.join(appDir, 'server.bak'),
    upkeepDir,
    releases,
    release: (tag) => path.join(releases, tag),
    stagingRoot,
    staging: (tag) => path.join(stagingRoot, tag),
    updaterRunDir: path.join(upkeepDir, 'updater'),
    journal: path.join(dataDir, 'update-journal.json'),
    status: path.join(dataDir, 'update-status.jsonl'),
    history: path.join(dataDir, 'update-history.jsonl'),
    request: path.join(dataDir, 'update-request.json'),
    settings: path.join(dataDir, 'settings.json'),
    releaseCache: path.join(dataDir, 'release-cache.json'),
    adminPassword: path.join(dataDir, 'admin-password.json'),
    sessions: path.join(dataDir, 'sessions.json'),
    lock: path.join(dataDir, 'update.lock'),
    pidFile: path.join(dataDir, 'server.pid'),
    logs: path.join(dataDir, 'logs'),
  }
}

/**
 * The checkout a module runs from: the nearest directory above `startDir` holding `.git`.
 * A built bundle lives in `<checkout>/.upkeep/releases/<tag>/` (reached through `current`),
 * so walking up finds the checkout both built and unbuilt. `undefined` outside any checkout.
 */
export function findCheckoutRoot(startDir: string, exists: (p: string) => boolean = existsSync): string | undefined {
  let dir = path.resolve(startDir)
  for (;;) {
    if (exists(path.join(dir, '.git'))) return dir
    const parent = path.dirname(dir)
    if (parent === dir) return undefined
    dir = parent
  }
}
