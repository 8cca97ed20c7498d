import type { UpdatesStatus } from '../api'
import { Hint } from '../components/hint'
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
  onOpenUpdates: () => void
  onShowRun: () => void
}

/** The landing page: what runs, and whether an update waits — said only as far as it is known. */
export function OverviewPage({ status, now, run, failedVersion, onOpenUpdates, onShowRun }: OverviewProps) {
  return (
    <>
      <h1>Overview</h1>
      <p class="lede">This server runs Upkeep{status ? ` ${status.current.version}` : ''}.</p>
      <section class="card" aria-labelledby="overview-updates">
        <h2 class="card-title" id="overview-updates">
          Updates
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
