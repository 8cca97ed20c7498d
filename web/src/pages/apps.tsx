import type { ApiError, AppSummary, UpdatesStatus } from '../api'
import { Hint } from '../components/hint'
import { ProgressBar } from '../components/progress-bar'
import { updatesPathOf } from '../lib/app-routes'
import { appStateOf, lastRunText } from '../lib/app-state'
import { capitalise, splitMessage } from '../lib/error-text'
import { inPage } from '../lib/in-page-link'
import { progressOf } from '../lib/run-progress'
import type { FollowedRun } from '../lib/run-follower'
import { timeAgo } from '../lib/time'
import { activityOf } from '../lib/update-progress'

/** One app of the list, with what this page knows of it besides the list's answer. */
export interface AppRow {
  name: string
  label: string
  summary: AppSummary
  /** The freshest status (the list's, or the app's own once its page asked). */
  status: UpdatesStatus | undefined
  followed: FollowedRun
  failedVersion: string | undefined
}

export interface AppsPageProps {
  rows: AppRow[] | undefined
  error: ApiError | null
  now: number
  onOpen: (app: string) => void
}

/** Every app this server updates: what runs, what is newer, how its last update went, and its page. */
export function AppsPage({ rows, error, now, onOpen }: AppsPageProps) {
  const link = (app: string) => inPage(() => onOpen(app))
  return (
    <>
      <h1>Apps</h1>
      <p class="lede">The apps this server keeps up to date, Upkeep among them. Open an app to check for, install or look back on its updates.</p>
      {error ? (
        <div class="notice error" role="alert">
          <strong>Could not load the apps</strong>
          {capitalise(splitMessage(error.message).headline)}
        </div>
      ) : null}
      {!rows ? (
        error ? null : <p class="muted">Loading…</p>
      ) : (
        <section class="card" aria-label="Apps">
          <div class="table-wrap">
            <table class="apps cards" data-testid="apps" role="table">
              <thead role="rowgroup">
                <tr role="row">
                  <th scope="col" role="columnheader">
                    App
                  </th>
                  <th scope="col" role="columnheader">
                    Running
                  </th>
                  <th scope="col" role="columnheader">
                    Latest
                  </th>
                  <th scope="col" role="columnheader">
                    Status
                  </th>
                  <th scope="col" role="columnheader">
                    Last update
                  </th>
                </tr>
              </thead>
              <tbody role="rowgroup">
                {rows.map((r) => (
                  <AppLine row={r} now={now} onOpen={link(r.name)} />
                ))}
              </tbody>
            </table>
          </div>
        </section>
      )}
    </>
  )
}

function AppLine({ row, now, onOpen }: { row: AppRow; now: number; onOpen: (e: MouseEvent) => void }) {
  const { summary, status } = row
  const run = row.followed.run
  const state = appStateOf(summary, status, run, row.failedVersion)
  const href = updatesPathOf(row.name)
  if (summary.error) {
    // "<file> is not valid:" and then one problem a line.
    const [headline = '', ...problems] = summary.error.message.split('\n').map((l) => l.trim()).filter(Boolean)
    return (
      <tr role="row" data-app={row.name} data-state="broken">
        <td role="cell" data-label="App">
          <div>
            <strong>{row.label}</strong>
          </div>
        </td>
        <td role="cell" data-label="Status" colspan={4} class="broken">
          <div class="notice error" data-testid="app-error">
            <strong>Its definition is broken: the app is not updated</strong>
            <div>{capitalise(headline)}</div>
            {problems.length ? (
              <ul class="problems" data-testid="app-problems">
                {problems.map((p) => (
                  <li>{p}</li>
                ))}
              </ul>
            ) : null}
            {summary.error.hint ? (
              <div>
                <Hint hint={summary.error.hint} page="other" />
              </div>
            ) : null}
          </div>
        </td>
      </tr>
    )
  }
  const last = summary.lastRun
  return (
    <tr role="row" data-app={row.name} data-state={state.kind}>
      <td role="cell" data-label="App">
        <div>
          <a href={href} onClick={onOpen} class="app-name">
            {row.label}
          </a>
          {row.name === 'upkeep' ? <div class="muted small">Upkeep itself</div> : null}
        </div>
      </td>
      <td role="cell" data-label="Running">
        <div data-testid="app-current">{status?.current.version === 'unknown' ? <span class="muted" title="Known once Upkeep has installed or updated it">not known</span> : (status?.current.version ?? '—')}</div>
      </td>
      <td role="cell" data-label="Latest">
        <div data-testid="app-latest">{status?.latest?.version ?? '—'}</div>
      </td>
      <td role="cell" data-label="Status">
        <div data-testid="app-state">
          <span class={`badge state-${state.kind}`}>{state.text}</span>
          {run?.status === 'running' ? (
            <div class="app-progress">
              <ProgressBar value={progressOf(run, now)} tone="running" label={`Update progress of ${row.label}`} runId={run.updateId} compact />
              <div class="muted small">{row.followed.restarting ? 'Server restarting…' : activityOf(run)}</div>
            </div>
          ) : null}
          {status?.error && status.error.code !== 'RATE_LIMITED' && state.kind === 'unknown' ? <div class="muted small">{capitalise(splitMessage(status.error.message).headline)}</div> : null}
        </div>
      </td>
      <td role="cell" data-label="Last update">
        <div data-testid="app-last-run">
          {last ? <span class={`badge ${last.status}`}>{lastRunText(last)}</span> : <span class="muted">{lastRunText(last)}</span>}
          {last ? <div class="muted small">{timeAgo(last.finishedAt, now)}</div> : null}
        </div>
      </td>
    </tr>
  )
}
