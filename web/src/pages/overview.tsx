import type { UpdatesStatus } from '../api'
import { Hint } from '../components/hint'
import { appStateOf } from '../lib/app-state'
import type { AppRow } from './apps'
import { isFailure, outcomeSummary, outcomeTitle } from '../lib/run-outcome'
import { capitalise, splitMessage } from '../lib/error-text'
import { pendingUpdate } from '../lib/pending-update'
import { timeAgo } from '../lib/time'
import type { RunView } from '../lib/update-progress'

export interface OverviewProps {
  status: UpdatesStatus | undefined
  now: number
  run: RunView | undefined
  failedVersion: string | undefined
  /** Every app (once the list has answered): with more than Upkeep, a summary of them. */
  apps: AppRow[] | undefined
  onOpenUpdates: () => void
  onOpenApps: () => void
  onShowRun: () => void
}

/** The landing page: what runs, and whether an update waits — said only as far as it is known. */
export function OverviewPage({ status, now, run, failedVersion, apps, onOpenUpdates, onOpenApps, onShowRun }: OverviewProps) {
  const others = apps && apps.length > 1 ? apps : undefined
  return (
    <>
      <h1>Overview</h1>
      <p class="lede">
        This server runs Upkeep{status ? ` ${status.current.version}` : ''}
        {others ? `, which keeps ${others.length - 1} other app${others.length === 2 ? '' : 's'} up to date` : ''}.
      </p>
      {others ? (
        <section class="card" aria-labelledby="overview-apps">
          <h2 class="card-title" id="overview-apps">
            Apps
          </h2>
          <p data-testid="overview-apps">{appsSummary(others)}</p>
          <button type="button" onClick={onOpenApps}>
            Open Apps
          </button>
        </section>
      ) : null}
      <section class="card" aria-labelledby="overview-updates">
        <h2 class="card-title" id="overview-updates">
          {others ? 'Updates of Upkeep' : 'Updates'}
        </h2>
        <div data-testid="overview-updates">{summary(status, run, failedVersion, now)}</div>
        {run && (run.status === 'running' || isFailure(run)) ? (
          <button type="button" onClick={onShowRun}>
            {run.status === 'running' ? 'Show progress' : 'What went wrong'}
          </button>
        ) : (
          <button type="button" onClick={onOpenUpdates}>
            Open Software Updates
          </button>
        )}
      </section>
    </>
  )
}

/** "3 apps: 1 update available, 1 updating, 1 with a broken definition." */
function appsSummary(rows: AppRow[]): string {
  const kinds = rows.map((r) => appStateOf(r.summary, r.status, r.followed.run, r.failedVersion).kind)
  const count = (k: string[]) => kinds.filter((x) => k.includes(x)).length
  const parts = [
    [count(['available']), 'update available', 'updates available'],
    [count(['running', 'requested']), 'updating', 'updating'],
    [count(['failed-release']), 'with a failed update', 'with a failed update'],
    [count(['broken']), 'with a broken definition', 'with a broken definition'],
  ] as const
  const said = parts.filter(([n]) => n > 0).map(([n, one, many]) => `${n} ${n === 1 ? one : many}`)
  return `${rows.length} apps${said.length ? `: ${said.join(', ')}` : ', nothing to install'}.`
}

function summary(status: UpdatesStatus | undefined, run: RunView | undefined, failedVersion: string | undefined, now: number) {
  if (!status) return <p class="muted">Loading…</p>
  const pending = pendingUpdate(status.running, run)
  if (run?.status === 'running' || pending) {
    return <p>An update to {(run?.status === 'running' ? run.to : pending?.to) ?? 'a new version'} is running.</p>
  }
  if (isFailure(run)) {
    return (
      <p>
        {outcomeTitle(run)}. {outcomeSummary(run)}
      </p>
    )
  }
  if (status.updateAvailable && status.latest && status.latest.version !== failedVersion) {
    return (
      <p>
        Version {status.latest.version} is available (you run {status.current.version}).
      </p>
    )
  }
  if (status.updateAvailable && status.latest) {
    return (
      <p>
        {status.latest.version} is the newest release, but installing it failed; you run {status.current.version}. A newer release will be offered when it is published.
      </p>
    )
  }
  if (status.checksDisabled) return <p>Update checks are disabled on this server (UPDATE_CHECK_DISABLED=true).</p>
  if (!status.source) {
    return (
      <>
        <p>
          <strong>Upkeep cannot check for updates: no update source is set.</strong>
        </p>
        {status.error?.hint ? (
          <p>
            <Hint hint={status.error.hint} page="other" />
          </p>
        ) : null}
      </>
    )
  }
  if ((status.error && status.error.code !== 'RATE_LIMITED') || status.via === 'git') {
    return (
      <p>
        Not known whether you are up to date: the last check failed
        {status.error ? ` (${capitalise(splitMessage(status.error.message).headline)})` : ''}.
        {status.checkedAt && status.via === 'api' ? ` Last successful check ${timeAgo(status.checkedAt, now)}.` : ''}
      </p>
    )
  }
  if (!status.checkedAt) return <p>Not checked for updates yet.</p>
  return (
    <p>
      Up to date — last checked {timeAgo(status.checkedAt, now)}.
    </p>
  )
}
