import { useEffect, useState } from 'hono/jsx/dom'
import { api, ApiError, type HistoryEntries, type SettingsView, type UpdatesStatus } from '../api'
import { ConfirmDialog } from '../components/confirm-dialog'
import { renderMarkdown } from '../lib/markdown'
import { formatDate, formatDuration, timeAgo, timeUntil } from '../lib/time'
import { labelOf, type RunView } from '../lib/update-progress'
import type { Connection } from '../lib/use-update-run'

export interface SoftwareUpdatesProps {
  status: UpdatesStatus | undefined
  statusError: ApiError | null
  refresh: (next?: UpdatesStatus) => Promise<void>
  run: RunView | undefined
  connection: Connection
  attempts: number
  follow: (updateId: string) => void
  justUpdated: { from: string; to: string } | null
  /** Open the confirmation right away (the banner's "Update now"). */
  confirmOnOpen: boolean
  onConfirmShown: () => void
}

const SOURCE_FROM: Record<string, string> = {
  env: 'the UPDATE_REPO environment variable',
  setting: 'the stored setting',
  origin: "the checkout's git remote origin",
}

/** An error's headline: updater messages put command output after "output:" and a newline. */
function firstLine(message: string): string {
  return message.split('\n')[0]!.replace(/;? output:$/, '')
}

function restOf(message: string): string {
  return message.split('\n').slice(1).join('\n').trim()
}

function errorText(err: unknown): { message: string; hint?: string } {
  if (err instanceof ApiError) return { message: err.message, hint: err.hint }
  return { message: String(err) }
}

export function SoftwareUpdatesPage(props: SoftwareUpdatesProps) {
  const { status, run } = props
  const [checking, setChecking] = useState(false)
  const [actionError, setActionError] = useState<{ message: string; hint?: string } | null>(null)
  const [confirm, setConfirm] = useState<{ version: string } | null>(null)
  const [chosen, setChosen] = useState<string>('')
  const [history, setHistory] = useState<HistoryEntries | null>(null)
  const [, tick] = useState(0)

  const loadHistory = () =>
    api
      .history()
      .then((h) => setHistory(h.entries))
      .catch(() => setHistory((h) => h ?? []))

  useEffect(() => {
    void loadHistory()
    // Keeps "checked N minutes ago" current.
    const t = window.setInterval(() => tick((n) => n + 1), 30_000)
    return () => window.clearInterval(t)
  }, [])

  // A run that ended changes the history and what is running.
  useEffect(() => {
    if (run && run.status !== 'running') {
      void loadHistory()
      void props.refresh()
    }
  }, [run?.status])

  useEffect(() => {
    if (props.confirmOnOpen && status?.updateAvailable && status.latest) {
      setConfirm({ version: status.latest.version })
      props.onConfirmShown()
    }
  }, [props.confirmOnOpen, status?.latest?.version])

  const check = async () => {
    setChecking(true)
    setActionError(null)
    try {
      await props.refresh(await api.check())
    } catch (err) {
      setActionError(errorText(err))
    } finally {
      setChecking(false)
    }
  }

  const startUpdate = async (version: string) => {
    setConfirm(null)
    setActionError(null)
    try {
      const { updateId } = await api.apply({ version, backup: true })
      props.follow(updateId)
    } catch (err) {
      if (err instanceof ApiError && err.code === 'UPDATE_RUNNING') {
        await props.refresh()
        setActionError({ message: 'An update is already running; its progress is shown below.' })
      } else setActionError(errorText(err))
    }
  }

  const running = run?.status === 'running'
  const latest = status?.latest ?? null
  const releases = status?.releases ?? []
  const target = chosen || latest?.version || ''

  return (
    <>
      <h1>Software Updates</h1>
      <p class="lede">Keep this app up to date. Updates back up your data first and roll back by themselves if the new version does not start.</p>

      {props.justUpdated ? (
        <div class="notice ok" role="status" data-testid="updated-notice">
          <strong>Updated to v{props.justUpdated.to}</strong>
          Upkeep now runs {props.justUpdated.to} (was {props.justUpdated.from}).
        </div>
      ) : null}
      {actionError ? (
        <div class="notice error" role="alert">
          <strong>{actionError.message}</strong>
          {actionError.hint ? <span>{actionError.hint}</span> : null}
        </div>
      ) : null}
      {props.statusError ? (
        <div class="notice error" role="alert">
          <strong>Could not load the update status</strong>
          {props.statusError.message}
        </div>
      ) : null}

      {run ? <RunPanel run={run} connection={props.connection} attempts={props.attempts} onRetry={() => startUpdate(run.to)} /> : null}

      <section class="card" aria-labelledby="current-title">
        <div class="card-head">
          <h2 id="current-title">Current version</h2>
          <button type="button" onClick={check} disabled={checking || !status || status.checksDisabled || running}>
            {checking ? 'Checking…' : 'Check for updates'}
          </button>
        </div>
        {status ? (
          <dl class="facts">
            <dt>Version</dt>
            <dd data-testid="current-version">{status.current.version}</dd>
            <dt>Commit</dt>
            <dd class="mono" title={status.current.commit}>
              {status.current.commit.slice(0, 12)}
            </dd>
            <dt>Last checked</dt>
            <dd>
              {status.checksDisabled ? 'Checks are disabled (UPDATE_CHECK_DISABLED=true): this server never contacts GitHub.' : timeAgo(status.checkedAt)}
            </dd>
            {!status.checksDisabled && status.nextCheckAt && status.error?.code === 'RATE_LIMITED' ? (
              <>
                <dt>Next check</dt>
                <dd>
                  GitHub's rate limit was reached; the next check can happen {timeUntil(status.nextCheckAt)} ({formatDate(status.nextCheckAt)}).
                </dd>
              </>
            ) : null}
          </dl>
        ) : (
          <p class="muted">Loading…</p>
        )}
        {status?.error && status.error.code !== 'RATE_LIMITED' && !status.checksDisabled ? (
          <div class="notice warn" role="status" style="margin-top:12px">
            <strong>{status.error.message}</strong>
            {status.error.hint ?? null}
          </div>
        ) : null}
        {status && !status.updateAvailable && !status.checksDisabled && status.checkedAt ? <p>You are up to date.</p> : null}
      </section>

      {status?.updateAvailable && latest ? (
        <section class="card" id="whats-new" aria-labelledby="available-title" tabindex={-1}>
          <div class="card-head">
            <div>
              <h2 id="available-title">Version {latest.version} is available</h2>
              <div class="muted">
                {latest.name && latest.name !== latest.tag ? `${latest.name} · ` : ''}
                {latest.publishedAt ? `published ${formatDate(latest.publishedAt)}` : ''}
                {latest.prerelease ? ' · prerelease' : ''}
              </div>
            </div>
            <div class="row">
              {releases.length > 1 ? (
                <>
                  <label class="visually-hidden" for="version-select">
                    Version to install
                  </label>
                  <select id="version-select" value={target} onChange={(e: Event) => setChosen((e.target as HTMLSelectElement).value)}>
                    {releases.map((r) => (
                      <option value={r.version}>v{r.version}</option>
                    ))}
                  </select>
                </>
              ) : null}
              <button type="button" class="primary" disabled={running} onClick={() => setConfirm({ version: target })}>
                Update now
              </button>
            </div>
          </div>
          <div class="notes" data-testid="release-notes" dangerouslySetInnerHTML={{ __html: renderMarkdown(latest.notesMarkdown || '_No release notes._') }} />
          {latest.url && /^https?:/.test(latest.url) ? (
            <p>
              <a href={latest.url} target="_blank" rel="noopener noreferrer">
                View release v{latest.version} on GitHub
              </a>
            </p>
          ) : null}
        </section>
      ) : null}

      <SourceCard status={status} onSaved={() => props.refresh()} />

      <section class="card" aria-labelledby="history-title">
        <h2 id="history-title">History</h2>
        <HistoryTable entries={history} />
      </section>

      <ConfirmDialog open={confirm !== null} title={`Update to v${confirm?.version ?? ''}?`} confirmLabel={`Update to v${confirm?.version ?? ''}`} onCancel={() => setConfirm(null)} onConfirm={() => confirm && startUpdate(confirm.version)}>
        <p>
          Upkeep will back up <code>data/</code>, install v{confirm?.version} and restart the app. It is unavailable for a few seconds while it restarts.
        </p>
        <p class="muted">If the new version does not come up healthy, the previous version and its data are restored automatically.</p>
      </ConfirmDialog>
    </>
  )
}

function RunPanel({ run, connection, attempts, onRetry }: { run: RunView; connection: Connection; attempts: number; onRetry: () => void }) {
  const current = run.steps.find((s) => s.state === 'running')
  const restarting = run.status === 'running' && connection === 'reconnecting'
  const title =
    run.status === 'running'
      ? `Updating ${run.from} → ${run.to}`
      : run.status === 'complete'
        ? `Updated to ${run.to}`
        : run.status === 'rolled_back'
          ? `Update to ${run.to} failed and was rolled back`
          : `Update to ${run.to} failed`
  return (
    <section class="card" aria-labelledby="run-title" data-testid="update-run" data-status={run.status}>
      <h2 id="run-title">{title}</h2>
      {run.status === 'running' ? (
        <p class="muted" role="status" aria-live="polite">
          {restarting
            ? `The server is restarting. This page reconnects by itself${attempts > 1 ? ` (attempt ${attempts})` : ''}…`
            : current
              ? `${labelOf(current.name)}…`
              : 'Starting…'}
        </p>
      ) : null}
      {run.status === 'complete' ? (
        <p role="status" aria-live="polite">
          Waiting for {run.to} to answer, then this page reloads…
        </p>
      ) : null}
      {run.status === 'rolled_back' || run.status === 'failed' ? (
        <div class={`notice ${run.status === 'rolled_back' ? 'warn' : 'error'}`} role="alert" data-testid="run-failure">
          <strong>
            {run.failedStep ? `${labelOf(run.failedStep)} failed` : 'The update failed'}
            {run.error ? `: ${firstLine(run.error.message)}` : ''}
          </strong>
          {run.error && restOf(run.error.message) ? (
            <details>
              <summary>Output</summary>
              <pre class="log">{restOf(run.error.message)}</pre>
            </details>
          ) : null}
          {run.error?.hint ? <div>{run.error.hint}</div> : null}
          {run.rolledBack ? (
            <div data-testid="rollback-notice">The previous version {run.from} was restored and is running again; your data is as it was.</div>
          ) : (
            <div>Nothing was changed on the server.</div>
          )}
          {run.backupPath ? (
            <div class="muted">
              Backup: <span class="mono">{run.backupPath}</span>
            </div>
          ) : null}
          <div style="margin-top:8px">
            <button type="button" class="primary" onClick={onRetry}>
              Retry
            </button>
          </div>
        </div>
      ) : null}
      <progress max={100} value={Math.round(run.fraction * 100)} aria-label="Update progress" />
      <ol class="steps" aria-label="Steps" style="margin-top:12px">
        {run.steps.map((s) => (
          <li class="step" data-state={s.state} data-step={s.name}>
            <span class="icon" aria-hidden="true">
              {s.state === 'done' ? '✓' : s.state === 'failed' ? '!' : ''}
            </span>
            <span>
              {s.label}
              <span class="visually-hidden">: {s.state}</span>
            </span>
            <span class="duration">{s.state === 'running' ? 'running' : formatDuration(s.durationMs)}</span>
          </li>
        ))}
      </ol>
      <details open={run.status !== 'complete'}>
        <summary>Log</summary>
        <pre class="log" role="log" aria-live="off" data-testid="run-log">
          {run.log.length ? run.log.map((l) => `${l.level === 'info' ? '' : l.level.toUpperCase() + ' '}${l.message}`).join('\n') : 'No output yet.'}
        </pre>
      </details>
    </section>
  )
}

function SourceCard({ status, onSaved }: { status: UpdatesStatus | undefined; onSaved: () => void }) {
  const [settings, setSettings] = useState<SettingsView | null>(null)
  const [repo, setRepo] = useState('')
  const [channel, setChannel] = useState<'stable' | 'prerelease'>('stable')
  const [checkEnabled, setCheckEnabled] = useState(true)
  const [message, setMessage] = useState<{ kind: 'ok' | 'error'; text: string; hint?: string } | null>(null)
  const [saving, setSaving] = useState(false)

  useEffect(() => {
    api
      .settings()
      .then((s) => {
        setSettings(s)
        setRepo(s.updateRepo ?? '')
        setChannel(s.channel)
        setCheckEnabled(s.checkEnabled)
      })
      .catch((err) => setMessage({ kind: 'error', ...{ text: errorText(err).message } }))
  }, [])

  const save = async (e: Event) => {
    e.preventDefault()
    setSaving(true)
    setMessage(null)
    try {
      const s = await api.saveSettings({ updateRepo: repo.trim() || null, channel, checkEnabled })
      setSettings(s)
      setMessage({ kind: 'ok', text: 'Saved.' })
      onSaved()
    } catch (err) {
      const t = errorText(err)
      setMessage({ kind: 'error', text: t.message, hint: t.hint })
    } finally {
      setSaving(false)
    }
  }

  const pinned = settings?.env.UPDATE_REPO ?? null
  return (
    <section class="card" aria-labelledby="source-title">
      <h2 id="source-title">Update source</h2>
      {status?.source ? (
        <p>
          Releases come from <strong class="mono">{status.source.repo}</strong>, set by {SOURCE_FROM[status.source.from] ?? status.source.from}.
        </p>
      ) : (
        <p class="muted">No update source is known yet.</p>
      )}
      <form class="stack" onSubmit={save}>
        <div class="field">
          <label for="repo">Stored repository</label>
          <input
            id="repo"
            type="text"
            placeholder="owner/name"
            value={repo}
            disabled={pinned !== null}
            aria-describedby="repo-help"
            onInput={(e: Event) => setRepo((e.target as HTMLInputElement).value)}
          />
          <span class="help" id="repo-help">
            {pinned
              ? `UPDATE_REPO=${pinned} is set in the environment and wins over this setting.`
              : "owner/name or a GitHub URL; leave empty to use the checkout's git remote origin."}
          </span>
        </div>
        <div class="field">
          <label for="channel">Channel</label>
          <select id="channel" value={channel} onChange={(e: Event) => setChannel((e.target as HTMLSelectElement).value as 'stable' | 'prerelease')}>
            <option value="stable">Stable releases</option>
            <option value="prerelease">Prereleases too</option>
          </select>
        </div>
        <label class="check">
          <input type="checkbox" checked={checkEnabled} onChange={(e: Event) => setCheckEnabled((e.target as HTMLInputElement).checked)} />
          Check for updates automatically (every 30 minutes at most)
        </label>
        {message ? (
          <div class={`notice ${message.kind === 'ok' ? 'ok' : 'error'}`} role={message.kind === 'ok' ? 'status' : 'alert'}>
            {message.text}
            {message.hint ? <div class="muted">{message.hint}</div> : null}
          </div>
        ) : null}
        <div>
          <button type="submit" disabled={saving || !settings}>
            {saving ? 'Saving…' : 'Save source settings'}
          </button>
        </div>
      </form>
    </section>
  )
}

const STATUS_TEXT: Record<string, string> = { complete: 'Complete', rolled_back: 'Rolled back', failed: 'Failed' }

function HistoryTable({ entries }: { entries: HistoryEntries | null }) {
  if (entries === null) return <p class="muted">Loading…</p>
  if (!entries.length) return <p class="muted">No updates yet.</p>
  return (
    <div class="table-wrap">
      <table data-testid="history">
        <thead>
          <tr>
            <th scope="col">From</th>
            <th scope="col">To</th>
            <th scope="col">Status</th>
            <th scope="col">When</th>
            <th scope="col">Duration</th>
            <th scope="col">Backup</th>
          </tr>
        </thead>
        <tbody>
          {entries.map((e) => (
            <tr data-id={e.id}>
              <td>{e.from.version}</td>
              <td>{e.to.version}</td>
              <td>
                <span class={`badge ${e.status}`}>{STATUS_TEXT[e.status] ?? e.status}</span>
                {e.error ? (
                  <div class="muted" title={e.error.message}>
                    {firstLine(e.error.message)}
                  </div>
                ) : null}
              </td>
              <td title={e.startedAt}>{formatDate(e.startedAt)}</td>
              <td>{formatDuration(e.durationMs)}</td>
              <td class="mono">{e.backupPath ? e.backupPath.split('/').pop() : '—'}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  )
}
