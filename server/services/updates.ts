import { isUpdateError } from '../../updater/shared/errors'
import type { InstalledFrom } from '../../updater/shared/installed-from'
import type { ReleaseInfo } from '../../updater/shared/release-cache'
import { isNewer, type BuildInfo } from '../../updater/shared/version'
import type { CheckMode, ReleaseSource } from './release-source'
import type { RepoResolver, RepoSource } from './repo-resolver'
import type { Channel, SettingsStore } from './settings'

/** An update the updater is running, was asked for, or left unfinished (recovery pending). */
export interface RunningUpdate {
  state: 'running' | 'requested' | 'interrupted'
  /** Follow it on /api/updates/events; events of other updates are not this one's. */
  updateId: string | null
  from: string | null
  to: string | null
  startedAt: string | null
}

export interface StatusError {
  code: string
  message: string
  hint?: string
}

/** `GET /api/updates`, `upkeep status --json`: what runs, what is available, and how we know. */
export interface UpdatesStatus {
  /** `installedFrom`: how the updater installed what runs (absent for an install it did not make). */
  current: { version: string; commit: string; installedFrom?: InstalledFrom }
  /** The highest release on the channel; it is the update only when `updateAvailable`. */
  latest: ReleaseInfo | null
  /** Every release on the channel newer than the running version, highest first (what can be installed). */
  releases: ReleaseInfo[]
  updateAvailable: boolean
  /** ISO time of the last successful check; null before the first. */
  checkedAt: string | null
  /** ISO time when the next request to GitHub may (or, automatically, will) happen; null when checks are off. */
  nextCheckAt: string | null
  source: RepoSource | null
  channel: Channel
  /** `UPDATE_CHECK_DISABLED=true`: GitHub is never asked. */
  checksDisabled: boolean
  /** The `checkEnabled` setting: false means no automatic checks, only explicit ones. */
  checkEnabled: boolean
  /** How the release list was obtained: the GitHub API, or `git ls-remote` when the API was unreachable. */
  via: 'api' | 'git' | null
  error: StatusError | null
  /** The update in progress, if any. */
  running: RunningUpdate | null
}

export interface UpdatesService {
  /** Answers from the cache, refreshing it when older than 30 minutes (unless checks are off). */
  status(): Promise<UpdatesStatus>
  /** Asks GitHub now (still within the rate limit). */
  check(): Promise<UpdatesStatus>
  /** Called after the settings changed; a new repo or channel drops the cached answer. */
  settingsChanged(before: { updateRepo: string | null; channel: Channel }, after: { updateRepo: string | null; channel: Channel }): Promise<void>
}

export interface UpdatesDeps {
  /** What runs now: Upkeep's own build, or what the updater last installed of an app. */
  current: BuildInfo | (() => Promise<BuildInfo & { installedFrom?: InstalledFrom }>)
  checksDisabled: boolean
  settings: SettingsStore
  resolver: RepoResolver
  releases: ReleaseSource
  /** What the updater is doing (read from its files in data/); default: nothing. */
  running?: () => Promise<RunningUpdate | null>
}

export function createUpdatesService(deps: UpdatesDeps): UpdatesService {
  async function report(explicit: boolean): Promise<UpdatesStatus> {
    const [settings, running, current] = await Promise.all([deps.settings.read(), deps.running ? deps.running() : null, typeof deps.current === 'function' ? deps.current() : deps.current])
    // One key order whatever happens: `--json` output is diffed and parsed by scripts.
    const status = (fields: Pick<UpdatesStatus, 'latest' | 'releases' | 'checkedAt' | 'nextCheckAt' | 'source' | 'via' | 'error'>): UpdatesStatus => ({
      current: { version: current.version, commit: current.commit, ...('installedFrom' in current && current.installedFrom ? { installedFrom: current.installedFrom } : {}) },
      latest: fields.latest,
      releases: fields.releases,
      updateAvailable: fields.latest !== null && isNewer(fields.latest.version, current.version),
      checkedAt: fields.checkedAt,
      nextCheckAt: fields.nextCheckAt,
      source: fields.source,
      channel: settings.channel,
      checksDisabled: deps.checksDisabled,
      checkEnabled: settings.checkEnabled,
      via: fields.via,
      error: fields.error,
      running,
    })
    let source: RepoSource
    try {
      source = await deps.resolver.resolve(settings.updateRepo)
    } catch (err) {
      if (!isUpdateError(err)) throw err
      return status({ latest: null, releases: [], checkedAt: null, nextCheckAt: null, source: null, via: null, error: err.toJSON() })
    }
    const mode: CheckMode = deps.checksDisabled || (!settings.checkEnabled && !explicit) ? 'cached' : explicit ? 'force' : 'auto'
    const { cache, error, nextCheckAt } = await deps.releases.get({ repo: source.repo, channel: settings.channel }, mode)
    return status({
      latest: cache?.latest ?? null,
      releases: (cache?.releases ?? []).filter((r) => isNewer(r.version, current.version) && (settings.channel === 'prerelease' || !r.prerelease)),
      checkedAt: cache?.checkedAt ?? null,
      nextCheckAt: nextCheckAt?.toISOString() ?? null,
      source,
      via: cache?.via ?? null,
      error: deps.checksDisabled ? null : (error ?? null),
    })
  }

  return {
    status: () => report(false),
    async check() {
      return report(true)
    },
    async settingsChanged(before, after) {
      if (before.updateRepo !== after.updateRepo || before.channel !== after.channel) await deps.releases.invalidate()
    },
  }
}
