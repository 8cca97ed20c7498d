import { existsSync } from 'node:fs'
import path from 'node:path'
import type { Config } from './config'

/** Upkeep's own files: the manager's data (settings, sessions, requests, release caches). Pure. */
export interface ManagerPaths {
  /** Upkeep's checkout. */
  appDir: string
  dataDir: string
  settings: string
  /** The admin password's scrypt hash (0600). */
  adminPassword: string
  /** Admin sessions: hashes of their tokens (0600). */
  sessions: string
  /** Update requests for apps other than Upkeep: `<name>.json` each (Upkeep's own is `update-request.json`). */
  requestsDir: string
  /** Where the updater copies its own bundle before it runs, so a checkout cannot change it mid-run. */
  updaterRunDir: string
  /** Root of the apps' own state directories (journal, history, lock, backups), one per app. */
  stateRoot: string
  /** App definitions, `<name>.json` each. */
  appsDir: string
}

/** Where one app's checkout, builds and update state live; DESIGN.md "On disk". Pure. */
export interface AppPaths {
  app: string
  /** The app's git checkout. */
  appDir: string
  /** Symlink to the live build (`releases` layout). */
  current: string
  /** Symlink to the previous build, kept for rollback. */
  serverBak: string
  /** Upkeep's working area inside the checkout. */
  upkeepDir: string
  releases: string
  release(tag: string): string
  stagingRoot: string
  staging(tag: string): string
  /** `in-place` layout: what the previous build made, kept for rollback. */
  previousOutputs: string
  /** The app's update state: journal, status, history, lock (the manager's data dir for Upkeep itself). */
  stateDir: string
  journal: string
  status: string
  history: string
  lock: string
  /** What runs now as the updater last left it (version, tag, commit): the server shows it. */
  installed: string
  /** The request the server writes for this app (in the manager's data dir). */
  request: string
  /** The server's cached release list for this app (in the manager's data dir). */
  releaseCache: string
  /** Without systemd: the app's process and its output. */
  pidFile: string
  logs: string
  backupDir: string
  /** The app's data, backed up before each update. */
  dataPaths: string[]
  /** Where a rollback keeps the data the failed version left. */
  asideRoot: string
  /**
   * The keys pinned for the app's signed releases and tags (ssh-keygen allowed-signers), beside
   * its definition: root's, so neither the app's user nor the server can re-pin them.
   */
  allowedSigners: string
  /** Release artifacts being downloaded, kept between attempts so a download resumes. */
  downloads: string
  /** Installed dependencies of earlier source builds, by lockfile (dependency reuse). */
  dependencyCache: string
}

export const UPKEEP_APP = 'upkeep'

export function createManagerPaths(config: Pick<Config, 'appDir' | 'dataDir' | 'stateDir' | 'appsDir'>): ManagerPaths {
  const { appDir, dataDir } = config
  return {
    appDir,
    dataDir,
    settings: path.join(dataDir, 'settings.json'),
    adminPassword: path.join(dataDir, 'admin-password.json'),
    sessions: path.join(dataDir, 'sessions.json'),
    requestsDir: path.join(dataDir, 'requests'),
    updaterRunDir: path.join(appDir, '.upkeep', 'updater'),
    stateRoot: config.stateDir,
    appsDir: config.appsDir,
  }
}

/** Checkout-relative paths every layout shares. */
function checkoutPaths(appDir: string) {
  const upkeepDir = path.join(appDir, '.upkeep')
  const releases = path.join(upkeepDir, 'releases')
  const stagingRoot = path.join(upkeepDir, 'staging')
  return {
    appDir,
    current: path.join(appDir, 'current'),
    serverBak: path.join(appDir, 'server.bak'),
    upkeepDir,
    releases,
    release: (tag: string) => path.join(releases, tag),
    stagingRoot,
    staging: (tag: string) => path.join(stagingRoot, tag),
    previousOutputs: path.join(upkeepDir, 'previous'),
  }
}

/**
 * Upkeep's own paths are where they always were (its update files in its data dir), so a new
 * release works with the units an older install.sh rendered.
 */
export function createAppPaths(app: { name: string; checkout: string; data: { paths: string[]; backupDir: string | undefined } }, manager: ManagerPaths): AppPaths {
  const own = app.name === UPKEEP_APP
  const stateDir = own ? manager.dataDir : path.join(manager.stateRoot, app.name)
  return {
    app: app.name,
    ...checkoutPaths(app.checkout),
    stateDir,
    journal: path.join(stateDir, 'update-journal.json'),
    status: path.join(stateDir, 'update-status.jsonl'),
    history: path.join(stateDir, 'update-history.jsonl'),
    lock: path.join(stateDir, 'update.lock'),
    installed: path.join(stateDir, 'update-installed.json'),
    request: own ? path.join(manager.dataDir, 'update-request.json') : path.join(manager.requestsDir, `${app.name}.json`),
    releaseCache: own ? path.join(manager.dataDir, 'release-cache.json') : path.join(manager.dataDir, 'apps', app.name, 'release-cache.json'),
    pidFile: path.join(stateDir, own ? 'server.pid' : 'app.pid'),
    logs: path.join(stateDir, 'logs'),
    backupDir: app.data.backupDir ?? path.join(stateDir, 'backups'),
    dataPaths: app.data.paths,
    asideRoot: path.join(stateDir, own ? '.rolled-back' : 'rolled-back'),
    allowedSigners: path.join(manager.appsDir, `${app.name}.allowed_signers`),
    downloads: path.join(app.checkout, '.upkeep', 'downloads'),
    dependencyCache: path.join(app.checkout, '.upkeep', 'deps'),
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
