import type { AtomicWriteOptions } from '../../updater/shared/atomic-write'
import type { AppDefinition } from '../../updater/shared/apps/definition'
import { createRegistry, type Registry } from '../../updater/shared/apps/registry'
import type { Config } from '../../updater/shared/config'
import { UpdateError } from '../../updater/shared/errors'
import { readHistory, type HistoryEntry } from '../../updater/shared/history'
import { readInstalled } from '../../updater/shared/installed'
import type { Logger } from '../../updater/shared/log'
import { createAppPaths, createManagerPaths, UPKEEP_APP, type AppPaths, type ManagerPaths } from '../../updater/shared/paths'
import { redactUrl } from '../../updater/shared/repo'
import type { BuildInfo } from '../../updater/shared/version'
import { createAppGit } from './app-git'
import type { Clock } from '../../updater/shared/clock'
import type { GitHubClientOptions } from './github-releases'
import { createReleaseSource } from './release-source'
import type { RepoResolver } from './repo-resolver'
import { createRunningUpdate } from './running-update'
import type { SettingsStore } from './settings'
import { createTagSource } from './tag-source'
import { createUpdatesService, type UpdatesService, type UpdatesStatus } from './updates'

/** One app as the server serves it: its definition, where its files are, its release checks. */
export interface AppHandle {
  def: AppDefinition
  paths: AppPaths
  updates: UpdatesService
}

/** A line of the apps list (`GET /api/apps`). */
export interface AppSummary {
  name: string
  /** A definition file that does not validate: the apps list says so instead of hiding it. */
  error?: { code: string; message: string; hint?: string }
  status?: UpdatesStatus
  /** The newest history entry: how the last update ended. */
  lastRun?: Pick<HistoryEntry, 'id' | 'status' | 'from' | 'to' | 'finishedAt' | 'error'> | null
}

export interface AppsService {
  registry: Registry
  manager: ManagerPaths
  /** Upkeep itself first, then the apps by name. */
  list(): Promise<AppSummary[]>
  /** One app; NOT_FOUND when there is no such app, BAD_CONFIG when its definition is broken. */
  get(name: string): Promise<AppHandle>
}

export interface AppsServiceDeps {
  config: Config
  log: Logger
  clock: Clock
  settings: SettingsStore
  github: GitHubClientOptions
  webHost: string
  write: AtomicWriteOptions
  /** Upkeep's own release checks (UPDATE_REPO → setting → origin). */
  upkeep: UpdatesService
}

const UNKNOWN: BuildInfo = { version: 'unknown', commit: 'unknown' }

/**
 * The apps Upkeep manages, each with its own release checks (cached in the manager's data dir)
 * and its update state (read from the app's state dir). Handles are made once per definition and
 * made again when the definition file changes.
 */
export function createAppsService(deps: AppsServiceDeps): AppsService {
  const { config } = deps
  const manager = createManagerPaths(config)
  // The server never runs as root; definitions are root's files it reads, not trusts with root's powers.
  const registry = createRegistry(config, { requireRootOwned: false })
  const handles = new Map<string, { key: string; handle: AppHandle }>()

  function make(def: AppDefinition): AppHandle {
    const paths = createAppPaths(def, manager)
    if (def.name === UPKEEP_APP) return { def, paths, updates: deps.upkeep }
    const git = createAppGit(def.checkout, def.source.kind === 'git' ? def.source.remote : 'origin')
    const repo = def.source.kind === 'github' ? def.source.repo : undefined
    const resolver: RepoResolver = {
      async resolve() {
        if (repo) return { repo, from: 'definition' }
        const url = await git.originUrl()
        if (!url) throw new UpdateError('BAD_REPO', `${def.name}: the checkout has no remote "${def.source.kind === 'git' ? def.source.remote : 'origin'}" to list release tags from`, { hint: `git -C ${def.checkout} remote -v` })
        return { repo: redactUrl(url), from: 'definition' }
      },
    }
    const cacheFile = paths.releaseCache
    const releases = repo
      ? createReleaseSource({ cacheFile, github: deps.github, webHost: deps.webHost, clock: deps.clock, log: deps.log, remoteTags: () => git.remoteTags(), write: deps.write })
      : createTagSource({ cacheFile, remoteTags: () => git.remoteTags(), webBase: '', clock: deps.clock, log: deps.log, write: deps.write })
    const updates = createUpdatesService({
      current: async () => {
        const installed = await readInstalled(paths.installed)
        return installed ? { version: installed.version, commit: installed.commit ?? 'unknown', ...(installed.installedFrom ? { installedFrom: installed.installedFrom } : {}) } : UNKNOWN
      },
      checksDisabled: config.updateCheckDisabled && Boolean(repo),
      // Apps share the manager's channel and check toggle; the repository is the definition's.
      settings: { read: async () => ({ ...(await deps.settings.read()), updateRepo: null }), update: () => Promise.reject(new Error('read-only')) },
      resolver,
      releases,
      running: createRunningUpdate(paths),
    })
    return { def, paths, updates }
  }

  async function get(name: string): Promise<AppHandle> {
    const def = await registry.get(name)
    const key = JSON.stringify(def)
    const known = handles.get(name)
    if (known?.key === key) return known.handle
    const handle = make(def)
    handles.set(name, { key, handle })
    return handle
  }

  return {
    registry,
    manager,
    get,
    async list() {
      const out: AppSummary[] = []
      for (const entry of await registry.list()) {
        if (!entry.ok) {
          out.push({ name: entry.name, error: entry.error.toJSON() })
          continue
        }
        try {
          const h = await get(entry.name)
          const last = (await readHistory(h.paths.history)).at(-1)
          out.push({
            name: entry.name,
            status: await h.updates.status(),
            lastRun: last ? { id: last.id, status: last.status, from: last.from, to: last.to, finishedAt: last.finishedAt, ...(last.error ? { error: last.error } : {}) } : null,
          })
        } catch (err) {
          out.push({ name: entry.name, error: err instanceof UpdateError ? err.toJSON() : { code: 'INTERNAL', message: String(err) } })
        }
      }
      return out
    },
  }
}
