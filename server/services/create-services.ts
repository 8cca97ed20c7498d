import { stat } from 'node:fs/promises'
import path from 'node:path'
import type { AtomicWriteOptions } from '../../updater/shared/atomic-write'
import type { Config } from '../../updater/shared/config'
import type { Logger } from '../../updater/shared/log'
import { createPaths, type Paths } from '../../updater/shared/paths'
import { webHostsFor } from '../../updater/shared/repo'
import type { BuildInfo } from '../../updater/shared/version'
import { createAuth, type AuthService } from './auth'
import { systemClock, type Clock } from './clock'
import { createOriginGit, type OriginGit } from './origin-git'
import { createReleaseSource, type ReleaseSource } from './release-source'
import { createRepoResolver } from './repo-resolver'
import { createRunningUpdate } from './running-update'
import { fileSettings, type SettingsStore } from './settings'
import { createUpdatesService, type UpdatesService } from './updates'

export interface ServerServices {
  paths: Paths
  clock: Clock
  settings: SettingsStore
  releases: ReleaseSource
  updates: UpdatesService
  auth: AuthService
  /** How files in data/ are written (owner when a root CLI writes for the service user). */
  write: AtomicWriteOptions
}

export interface ServerServicesDeps {
  config: Config
  log: Logger
  build: BuildInfo
  /** Default: the global fetch, looked up per call (so msw in tests can replace it). */
  fetch?: typeof fetch
  clock?: Clock
  git?: OriginGit
}

/** The server's real services over `config.dataDir`; used by server/main.ts and server/cli.ts alike. */
export async function createServerServices(deps: ServerServicesDeps): Promise<ServerServices> {
  const { config, log, build } = deps
  const clock = deps.clock ?? systemClock
  const paths = createPaths(config)
  const write: AtomicWriteOptions = { owner: await dataDirOwner(config.dataDir) }
  const git = deps.git ?? createOriginGit(config.appDir)
  const hosts = webHostsFor(config.githubApiUrl)
  const settings = fileSettings(paths.settings, { log, write })
  const releases = createReleaseSource({
    cacheFile: paths.releaseCache,
    github: {
      apiUrl: config.githubApiUrl,
      token: config.githubToken,
      userAgent: `upkeep/${build.version}`,
      fetch: deps.fetch ?? ((input, init) => globalThis.fetch(input, init)),
    },
    webHost: hosts[0]!,
    clock,
    log,
    remoteTags: () => git.remoteTags(),
    write,
  })
  const resolver = createRepoResolver({ envRepo: config.updateRepo, git, hosts, clock })
  const updates = createUpdatesService({ build, checksDisabled: config.updateCheckDisabled, settings, resolver, releases, running: createRunningUpdate(paths) })
  const auth = createAuth({ passwordFile: paths.adminPassword, sessionsFile: paths.sessions, clock, log, write })
  return { paths, clock, settings, releases, updates, auth, write }
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
