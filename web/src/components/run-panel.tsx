import { useEffect, useRef } from 'hono/jsx/dom'
import { capitalise, splitMessage } from '../lib/error-text'
import { elapsedMs, formatClock, progressOf } from '../lib/run-progress'
import { formatDate, formatDuration } from '../lib/time'
import { isFailure, outcomeSummary, outcomeTitle } from '../lib/run-outcome'
import { activityOf, BEFORE_SWITCH, labelOf, type RunView } from '../lib/update-progress'
import { Hint } from './hint'
import { ProgressBar } from './progress-bar'

export interface RunPanelProps {
  run: RunView
  /** The time (browser clock), ticking while the run is running. */
  now: number
  attempts: number
  /** The server is restarting (the stream broke after the build, or /api/health shows the server went away). */
  restarting: boolean
  /** The event stream broke and the page is reconnecting (for whatever reason). */
  reconnecting: boolean
  onDismiss: () => void
  /** Installs the failed release again; absent when that is not offered. */
  onTryAgain?: () => void
  /** The update restarts this server (Upkeep's own): once complete the page reloads onto the new version. */
  reloads: boolean
}

/** The update being run, or the last one that failed: progress, steps, what went wrong, log. */
export function RunPanel({ run, now, attempts, restarting, reconnecting, onDismiss, onTryAgain, reloads }: RunPanelProps) {
  const running = run.status === 'running'
  const elapsed = elapsedMs(run, now)
  const failed = isFailure(run)
  const log = useRef<HTMLPreElement>(null)
  // The newest lines are what matter: keep the log scrolled to its end as lines arrive.
  useEffect(() => {
    const el = log.current
    if (el) el.scrollTop = el.scrollHeight
  }, [run.log.length, run.updateId])
  const tone = running ? 'running' : run.status === 'complete' ? 'complete' : 'failed'
  return (
    <section class="card run" id="update-run" tabindex={-1} aria-labelledby="run-title" data-testid="update-run" data-status={run.status}>
      <div class="card-head">
        <h2 class="card-title" id="run-title">
          {running ? `Updating ${run.from ? `${run.from} → ` : ''}${run.to}` : outcomeTitle(run)}
        </h2>
        {failed || (run.status === 'complete' && !reloads) ? (
          <button type="button" onClick={onDismiss}>
            Dismiss
          </button>
        ) : null}
      </div>
      {failed ? null : (
        <p class="run-status" role="status" aria-live="polite" data-testid="run-status">
          {running
            ? restarting
              ? `The server is restarting; reconnecting${attempts > 1 ? ` (attempt ${attempts})` : ''}…`
              : reconnecting
                ? `Connection to the server lost; reconnecting${attempts > 1 ? ` (attempt ${attempts})` : ''}… Last seen: ${activityOf(run)}`
                : activityOf(run)
            : reloads
              ? `Reloading onto ${run.to}…`
              : `${run.to} runs and answers its health check.`}
        </p>
      )}
      <ProgressBar value={progressOf(run, now)} tone={tone} label="Update progress" runId={run.updateId} />
      <p class="run-meta muted">
        {elapsed !== undefined ? (
          <span data-testid="elapsed">
            {running ? 'Elapsed' : 'Took'} {formatClock(elapsed)}
          </span>
        ) : null}
        {run.fromHistory && Number.isFinite(run.startedAt) ? <span>Started {formatDate(new Date(run.startedAt).toISOString())}</span> : null}
      </p>
      {running ? (
        <p class="notice info" data-testid="close-tab-note">
          {restarting ? 'You can close this tab: the update continues on the server. ' : 'You can close this tab: the update continues on the server, and this page shows where it is when you come back. '}
          {restarting ? 'This page reloads by itself once the new version answers.' : ''}
        </p>
      ) : null}
      {failed ? <FailureDetails run={run} onTryAgain={onTryAgain} /> : null}
      <ol class="steps" aria-label="Steps">
        {run.steps.map((s) => (
          <li class="step" data-state={s.state} data-step={s.name}>
            <span class="icon" aria-hidden="true">
              {s.state === 'done' ? '✓' : s.state === 'failed' ? '!' : s.state === 'skipped' ? '–' : ''}
            </span>
            <span>
              {s.label}
              <span class="visually-hidden">: {s.state === 'skipped' ? 'not run' : s.state}</span>
            </span>
            <span class="duration">{s.state === 'running' ? 'running' : s.state === 'skipped' ? 'not run' : formatDuration(s.durationMs)}</span>
          </li>
        ))}
      </ol>
      <details open={run.status !== 'complete'}>
        <summary>Log</summary>
        <pre class="log" role="log" aria-live="off" data-testid="run-log" ref={log}>
          {run.log.length
            ? run.log.map((l) => `${l.level === 'info' || l.fromStep ? '' : l.level.toUpperCase() + ' '}${l.message}`).join('\n')
            : run.fromHistory
              ? 'The log of this update is no longer available; the steps above come from the history.'
              : 'No output yet.'}
        </pre>
      </details>
    </section>
  )
}

/** The failed step, its error with the output open, what to do, and what runs now. */
function FailureDetails({ run, onTryAgain }: { run: RunView; onTryAgain?: () => void }) {
  const { headline, output } = splitMessage(run.error?.message ?? '')
  const rolledBack = run.status === 'rolled_back' || run.rolledBack
  return (
    <div class={`notice ${rolledBack ? 'warn' : 'error'} failure`} role="alert" data-testid="run-failure">
      <strong class="failure-title">{run.failedStep ? `${labelOf(run.failedStep)} failed` : 'The update failed'}</strong>
      {headline ? <p data-testid="failure-headline">{capitalise(headline)}</p> : null}
      {output ? (
        <div class="failure-output">
          <div class="label" id="failure-output-label">
            Output
          </div>
          <pre class="log" aria-labelledby="failure-output-label" data-testid="failure-output">
            {output}
          </pre>
        </div>
      ) : null}
      {run.error?.hint ? (
        <p>
          <span class="label">What to do: </span>
          <Hint hint={run.error.hint} page="software-updates" />
        </p>
      ) : null}
      <p data-testid={rolledBack ? 'rollback-notice' : 'outcome-notice'}>
        {outcomeSummary(run)}
        {rolledBack ? ' Your data is as it was before the update.' : ''}
      </p>
      {run.backupPath ? (
        <p class="muted">
          Backup of the data: <code>{run.backupPath}</code>
        </p>
      ) : null}
      {onTryAgain ? (
        <div class="row">
          <button type="button" onClick={onTryAgain}>
            Try {run.to} again
          </button>
          <span class="muted">
            {run.failedStep && BEFORE_SWITCH.has(run.failedStep) && run.failedStep !== 'build'
              ? 'Once the cause above is fixed.'
              : 'Only worth it if the cause was on this server (network, disk space); a broken release fails the same way.'}
          </span>
        </div>
      ) : null}
    </div>
  )
}
