import { useState } from 'hono/jsx/dom'
import type { UpdatesStatus } from '../api'
import { dismissBanner, isBannerDismissed } from '../lib/banner-dismissal'
import { elapsedMs, formatClock, progressOf } from '../lib/run-progress'
import { activityOf, type RunView } from '../lib/update-progress'
import { pendingUpdate } from '../lib/pending-update'
import { ProgressBar } from './progress-bar'
import { isFailure, outcomeSummary, outcomeTitle } from '../lib/run-outcome'

export interface UpdateBannerProps {
  status: UpdatesStatus | undefined
  /** The update running (or just ended, or the last failure not dismissed). */
  run: RunView | undefined
  /** The time (browser clock), ticking while a run is running. */
  now: number
  restarting: boolean
  /** On Software Updates the run panel is right there: no link to it, and a failure is told there only. */
  onUpdatesPage: boolean
  /** A release whose install failed last: not offered as "available" again. */
  failedVersion: string | undefined
  onUpdateNow: () => void
  onSeeWhatsNew: () => void
  onShowRun: () => void
  onDismissFailure: () => void
}

/**
 * On every page, in the sidebar: the update being run with its progress, the last one that
 * failed, or a newer version to install (until dismissed for that version).
 */
export function UpdateBanner(props: UpdateBannerProps) {
  const { status, run } = props
  const requested = pendingUpdate(status?.running, run)
  if (run?.status === 'complete') return <Reloading run={run} />
  const showRun = props.onUpdatesPage ? undefined : props.onShowRun
  if (run?.status === 'running') return <Running run={run} now={props.now} restarting={props.restarting} onShowRun={showRun} />
  if (requested) return <Requested to={requested.to} onShowRun={showRun} />
  if (isFailure(run)) return showRun ? <Failed run={run} onShowRun={showRun} onDismiss={props.onDismissFailure} /> : null
  return <Available {...props} />
}

function Running({ run, now, restarting, onShowRun }: { run: RunView; now: number; restarting: boolean; onShowRun: (() => void) | undefined }) {
  const elapsed = elapsedMs(run, now)
  return (
    <section class="banner running" aria-labelledby="banner-title" data-testid="update-banner" data-mode="running">
      <div class="banner-title" id="banner-title">
        {outcomeTitle(run)}
      </div>
      <ProgressBar value={progressOf(run, now)} tone="running" label="Update progress" runId={run.updateId} compact />
      <div class="muted" data-testid="banner-step">
        {restarting ? 'Server restarting, reconnecting…' : activityOf(run)}
        {elapsed !== undefined ? ` · ${formatClock(elapsed)}` : ''}
      </div>
      <div class="banner-note">You can close this tab; the update continues on the server.</div>
      {onShowRun ? (
        <div class="actions">
          <button type="button" onClick={onShowRun}>
            Show progress
          </button>
        </div>
      ) : null}
    </section>
  )
}

function Requested({ to, onShowRun }: { to: string | null; onShowRun: (() => void) | undefined }) {
  return (
    <section class="banner running" aria-labelledby="banner-title" data-testid="update-banner" data-mode="requested">
      <div class="banner-title" id="banner-title">
        {to ? `Updating to ${to}` : 'Updating'}
      </div>
      <div class="muted">Waiting for the updater to start…</div>
      {onShowRun ? (
        <div class="actions">
          <button type="button" onClick={onShowRun}>
            Show progress
          </button>
        </div>
      ) : null}
    </section>
  )
}

function Reloading({ run }: { run: RunView }) {
  return (
    <section class="banner done" aria-labelledby="banner-title" data-testid="update-banner" data-mode="complete">
      <div class="banner-title" id="banner-title">
        {outcomeTitle(run)}
      </div>
      <ProgressBar value={1} tone="complete" label="Update progress" runId={run.updateId} compact />
      <div class="muted">Reloading onto the new version…</div>
    </section>
  )
}

function Failed({ run, onShowRun, onDismiss }: { run: RunView; onShowRun: () => void; onDismiss: () => void }) {
  return (
    <section class="banner failed" aria-labelledby="banner-title" data-testid="update-banner" data-mode="failed">
      <div class="banner-title" id="banner-title">
        {outcomeTitle(run)}
      </div>
      <div>{outcomeSummary(run)}</div>
      <div class="actions">
        <button type="button" onClick={onShowRun}>
          What went wrong
        </button>
      </div>
      <button type="button" class="dismiss" aria-label={`Dismiss the notice about the failed update to ${run.to}`} title="Dismiss" onClick={onDismiss}>
        ×
      </button>
    </section>
  )
}

function Available({ status, failedVersion, onUpdateNow, onSeeWhatsNew }: UpdateBannerProps) {
  const latest = status?.updateAvailable ? status.latest : null
  const [dismissedNow, setDismissedNow] = useState<string | null>(null)
  if (!latest || latest.version === failedVersion || dismissedNow === latest.version || isBannerDismissed(latest.version)) return null
  return (
    <section class="banner" aria-labelledby="banner-title" data-testid="update-banner" data-mode="available">
      <div class="banner-title" id="banner-title">
        Upkeep {latest.version} is available
      </div>
      <div class="muted banner-running">You are running {status!.current.version}.</div>
      <div class="actions">
        <button type="button" class="primary" onClick={onUpdateNow}>
          Update now
        </button>
        <button type="button" onClick={onSeeWhatsNew}>
          See what's new
        </button>
      </div>
      <button
        type="button"
        class="dismiss"
        aria-label={`Dismiss the notice about version ${latest.version}`}
        title="Dismiss"
        onClick={() => {
          dismissBanner(latest.version)
          setDismissedNow(latest.version)
        }}
      >
        ×
      </button>
    </section>
  )
}
