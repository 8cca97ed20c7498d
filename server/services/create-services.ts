import { stat } from 'node:fs/promises'
import path from 'node:path'
import type { AtomicWriteOptions } from '../../updater/shared/atomic-write'
import type { Config } from '../../updater/shared/config'
import type { Logger } from '../../updater/shared/log'
import { upkeepDefinition } from '../../updater/shared/apps/builtin'
import { readInstalled } from '../../updater/shared/installed'
import { createAppPaths, createManagerPaths, type AppPaths, type ManagerPaths } from '../../updater/shared/paths'
import { webHostsFor } from '../../updater/shared/repo'
import type { BuildInfo } from '../../updater/shared/version'
import { createAppsService, type AppsService } from './apps'
import { validateWithSystemd } from './auto-update/calendar'
import { createJournalEvents, journaldAvailable } from './auto-update/journal-events'
import type { SchedulerClock } from './auto-update/scheduler'
import { createAutoUpdate, type AutoUpdateService } from './auto-update/service'
import { createAuth, type AuthService } from './auth'
import { systemClock, type Clock } from '../../updater/shared/clock'
import { createOriginGit, type OriginGit } from './origin-git'
import { createReleaseSource, type ReleaseSource } from './release-source'
import { createRepoResolver } from './repo-resolver'
import { createRunningUpdate } from './running-update'
import { fileSettings, type AutoUpdateStore, type SettingsStore } from './settings'
import type { UpdateLauncher } from './update-launcher'
import { createUpdateRequester, type UpdateRequester } from './update-requests'
import { createUpdatesService, type UpdatesService } from './updates'

export interface ServerServices {
  /** Upkeep's own files (settings, sessions, requests). */
  paths: ManagerPaths
  /** Upkeep's update state, as one app among them. */
  upkeepPaths: AppPaths
  apps: AppsService
  clock: Clock
  settings: SettingsStore & AutoUpdateStore
  releases: ReleaseSource
  updates: UpdatesService
  auth: AuthService
  /** How files in data/ are written (owner when a root CLI writes for the service user). */
  write: AtomicWriteOptions
  /** Asks the updater for an update ("Update now" and the scheduler). */
  requester: UpdateRequester
  /** Policies, the scheduler and notifications; server/main.ts starts it. */
  autoUpdate: AutoUpdateService
}

export interface ServerServicesDeps {
  config: Config
  log: Logger
  build: BuildInfo
  /** Default: the global fetch, looked up per call (so msw in tests can replace it). */
  fetch?: typeof fetch
  clock?: Clock
  git?: OriginGit
  /** Starts the updater after a request (process mode). */
  updateLauncher?: UpdateLauncher
  /** The scheduler's and the notifier's time; default: `clock`. */
  schedulerClock?: SchedulerClock
}

/** The server's real services over `config.dataDir`; used by server/main.ts and server/cli.ts alike. */
export async function createServerServices(deps: ServerServicesDeps): Promise<ServerServices> {
  const { config, log, build } = deps
  const clock = deps.clock ?? systemClock
  const paths = createManagerPaths(config)
  const upkeepPaths = createAppPaths(upkeepDefinition(config), paths)
  const write: AtomicWriteOptions = { owner: await dataDirOwner(config.dataDir) }
  const git = deps.git ?? createOriginGit(config.appDir)
  const hosts = webHostsFor(config.githubApiUrl)
  const settings = fileSettings(paths.settings, { log, write })
  const github = {
    apiUrl: config.githubApiUrl,
    token: config.githubToken,
    userAgent: `upkeep/${build.version}`,
    fetch: deps.fetch ?? ((input: RequestInfo | URL, init?: RequestInit) => globalThis.fetch(input, init)),
  }
  const releases = createReleaseSource({
    cacheFile: upkeepPaths.releaseCache,
    github,
    webHost: hosts[0]!,
    clock,
    log,
    remoteTags: () => git.remoteTags(),
    write,
  })
  const resolver = createRepoResolver({ envRepo: config.updateRepo, git, hosts, clock })
  // How the running build was installed, when the updater installed this very build.
  const current = async () => {
    const installed = await readInstalled(upkeepPaths.installed)
    return installed?.installedFrom && installed.version === build.version && installed.commit === build.commit ? { ...build, installedFrom: installed.installedFrom } : build
  }
  const updates = createUpdatesService({ current, checksDisabled: config.updateCheckDisabled, settings, resolver, releases, running: createRunningUpdate(upkeepPaths) })
  const apps = createAppsService({ config, log, clock, settings, github, webHost: hosts[0]!, write, upkeep: updates })
  const auth = createAuth({ passwordFile: paths.adminPassword, sessionsFile: paths.sessions, clock, log, write })
  const requester = createUpdateRequester({ apps, log, clock, ...(deps.updateLauncher ? { updateLauncher: deps.updateLauncher } : {}) })
  const systemd = config.serviceManager === 'systemd'
  const autoUpdate = createAutoUpdate({
    apps,
    settings,
    requester,
    clock: deps.schedulerClock ?? clock,
    log,
    dataDir: config.dataDir,
    write,
    userAgent: `upkeep/${build.version}`,
    // Under systemd, systemd-analyze is the authority on what a calendar expression means.
    ...(systemd ? { validateCalendar: (expr: string) => validateWithSystemd(expr) } : {}),
    journal: createJournalEvents({ enabled: systemd && journaldAvailable(), log }),
  })
  return { paths, upkeepPaths, apps, clock, settings, releases, updates, auth, write, requester, autoUpdate }
}

/**
 * Run as root (an operator's `sudo upkeep set-password`) against a data dir the service user
 * owns, new files must belong to that user too, or the server could no longer read them.
 */
async function dataDirOwner(dataDir: string): Promise<AtomicWriteOptions['owner']> {
  if (process.getuid?.() !== 0) return undefined
  for (const dir of [dataDir, path.dirname(dataDir)]) {
    try {
      const s = await stat(dir)
      return s.uid === 0 ? undefined : { uid: s.uid, gid: s.gid }
    } catch {
      // not there yet: try its parent
    }
  }
  return undefined
}
