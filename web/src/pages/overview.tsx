import type { UpdatesStatus } from '../api'
import { timeAgo } from '../lib/time'

/** The landing page: what runs, and whether an update waits. */
export function OverviewPage({ status, onOpenUpdates }: { status: UpdatesStatus | undefined; onOpenUpdates: () => void }) {
  return (
    <>
      <h1>Overview</h1>
      <p class="lede">This server runs Upkeep{status ? ` ${status.current.version}` : ''}.</p>
      <section class="card" aria-labelledby="overview-updates">
        <h2 id="overview-updates">Updates</h2>
        {!status ? (
          <p class="muted">Loading…</p>
        ) : status.updateAvailable && status.latest ? (
          <p>
            Version {status.latest.version} is available (you run {status.current.version}).
          </p>
        ) : status.checksDisabled ? (
          <p>Update checks are disabled on this server.</p>
        ) : (
          <p>Up to date — last checked {timeAgo(status.checkedAt)}.</p>
        )}
        <button type="button" onClick={onOpenUpdates}>
          Open Software Updates
        </button>
      </section>
    </>
  )
}
