import { useEffect, useState } from 'hono/jsx/dom'
import { api, ApiError, appApi, type HistoryEntries, type SettingsView, type UpdatesStatus } from '../api'
import { AutoUpdateCard } from '../components/auto-update-card'
import { ConfirmDialog } from '../components/confirm-dialog'
import { FormMessage, type FormMessageValue } from '../components/form-message'
import { Hint } from '../components/hint'
import { RunPanel } from '../components/run-panel'
import { isUpToDate } from '../lib/app-state'
import { APPS_PATH } from '../lib/app-routes'
import { installedFromKey, installedFromSentence, installedFromShort } from '../lib/installed-from'
import { isFailure } from '../lib/run-outcome'
import { capitalise, splitMessage } from '../lib/error-text'
import { inPage } from '../lib/in-page-link'
import { renderMarkdown } from '../lib/markdown'
import { pendingUpdate } from '../lib/pending-update'
import { formatDate, formatDuration, timeAgo, timeUntil } from '../lib/time'
import type { RunView } from '../lib/update-progress'
import type { JustUpdated } from '../lib/use-update-run'

export interface SoftwareUpdatesProps {
  /** The app this page is about; Upkeep itself (`self`) has its update source settings here too. */
  app: string
  label: string
  self: boolean
  status: UpdatesStatus | undefined
  statusError: ApiError | null
  refresh: (next?: UpdatesStatus) => Promise<unknown>
  run: RunView | undefined
  /** The time (browser clock): every second while a run is running, else every 30 s. */
  now: number
  attempts: number
  restarting: boolean
  reconnecting: boolean
  follow: (updateId: string) => void
  history: HistoryEntries | null
  /** The release whose install failed last (nothing installed since). */
  failedVersion: string | undefined
  justUpdated: JustUpdated | null
  /** Open the confirmation right away (the banner's "Update now"). */
  confirmOnOpen: boolean
  onConfirmShown: () => void
  /** Forgets the ended run shown (a failure, or another app's completed update). */
  onDismissRun: () => void
  /** Opens the apps list (the way back from another app's page). */
  onOpenApps: () => void
}

const SOURCE_FROM: Record<string, string> = {
  env: 'the UPDATE_REPO environment variable',
  setting: 'the stored setting',
  origin: "the checkout's git remote origin",
}

type Message = { message: string; hint?: string }

function errorText(err: unknown): Message {
  if (err instanceof ApiError) return { message: err.message, ...(err.hint ? { hint: err.hint } : {}) }
  return { message: String(err) }
}

type HintPage = 'software-updates' | 'other'

/** A notice of an error: the headline as a sentence, the hint with its commands as code. */
function ErrorNotice({ kind, title, error, testid, page }: { kind: 'error' | 'warn'; title?: string; error: Message; testid?: string; page: HintPage }) {
  return (
    <div class={`notice ${kind}`} role={kind === 'error' ? 'alert' : 'status'} data-testid={testid}>
      <strong>{title ?? capitalise(splitMessage(error.message).headline)}</strong>
      {title ? <div>{capitalise(splitMessage(error.message).headline)}</div> : null}
      {error.hint ? (
        <div>
          <Hint hint={error.hint} page={page} />
        </div>
      ) : null}
    </div>
  )
}

export function SoftwareUpdatesPage(props: SoftwareUpdatesProps) {
  const { status, run, self } = props
  const appUpdates = appApi(props.app)
  // "Under Update source below" is where Upkeep's own settings are; another app's hints stay as they are.
  const hintPage: HintPage = self ? 'software-updates' : 'other'
  const [checking, setChecking] = useState(false)
  const [actionError, setActionError] = useState<Message | null>(null)
  /** Set when "Update now" found another update running: said while that one runs, never after. */
  const [joinedRun, setJoinedRun] = useState(false)
  const [confirm, setConfirm] = useState<{ version: string } | null>(null)
  const [chosen, setChosen] = useState<string>('')

  // What was said about starting an update, and the version picked for it, are stale once it has ended.
  useEffect(() => {
    if (run && run.status !== 'running') {
      setJoinedRun(false)
      setActionError(null)
      setChosen('')
    }
  }, [run?.updateId, run?.status])

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
      await props.refresh(await appUpdates.check())
    } catch (err) {
      setActionError(errorText(err))
    } finally {
      setChecking(false)
    }
  }

  const startUpdate = async (version: string) => {
    setConfirm(null)
    setActionError(null)
    setJoinedRun(false)
    try {
      const { updateId } = await appUpdates.apply({ version, backup: true })
      props.follow(updateId)
    } catch (err) {
      if (err instanceof ApiError && err.code === 'UPDATE_RUNNING') {
        setJoinedRun(true)
        await props.refresh()
      } else setActionError(errorText(err))
    }
    window.setTimeout(() => document.getElementById('update-run')?.scrollIntoView({ block: 'start', behavior: 'smooth' }), 50)
  }

  const busy = run?.status === 'running' || pendingUpdate(status?.running, run) !== null
  const latest = status?.latest ?? null
  const releases = status?.releases ?? []
  const target = chosen || latest?.version || ''
  const failedEarlier = (v: string) => v === props.failedVersion
  const lastFailed = props.history?.[0]?.status !== 'complete' ? props.history?.[0] : undefined

  return (
    <>
      {self ? (
        <>
          <h1>Software Updates</h1>
          <p class="lede">Keep this app up to date. Updates back up your data first and roll back by themselves if the new version does not start.</p>
        </>
      ) : (
        <>
          <nav class="breadcrumb" aria-label="Breadcrumb">
            <a href={APPS_PATH} onClick={inPage(props.onOpenApps)}>
              Apps
            </a>
            <span aria-hidden="true"> / </span>
            <span aria-current="page">{props.label}</span>
          </nav>
          <h1>{props.label}</h1>
          <p class="lede">Software updates of {props.label}. Each update backs up its data first and rolls back by itself if the new version does not start.</p>
        </>
      )}

      {props.justUpdated ? (
        <div class="notice ok" role="status" data-testid="updated-notice">
          <strong>Updated to {props.justUpdated.to}</strong>
          {props.justUpdated.from} → {props.justUpdated.to}
          {props.justUpdated.durationMs !== undefined ? ` in ${formatDuration(props.justUpdated.durationMs)}` : ''}; the new version answers its health check.
        </div>
      ) : null}
      {actionError ? <ErrorNotice kind="error" error={actionError} testid="action-error" page={hintPage} /> : null}
      {joinedRun && run?.status === 'running' ? (
        <div class="notice info" role="status" data-testid="joined-run">
          An update was already running (started elsewhere); its progress is shown below.
        </div>
      ) : null}
      {props.statusError ? <ErrorNotice kind="error" title="Could not load the update status" error={props.statusError} page={hintPage} /> : null}
      {status?.running?.state === 'interrupted' ? (
        <div class="notice warn" role="status">
          <strong>An update {status.running.to ? `to ${status.running.to} ` : ''}stopped before it finished</strong>
          The next update finishes or rolls it back first; on the server, <code>{self ? 'upkeep recover' : `upkeep --app ${props.app} recover`}</code> does it now.
        </div>
      ) : null}

      {run ? (
        <RunPanel
          run={run}
          now={props.now}
          attempts={props.attempts}
          restarting={props.restarting}
          reconnecting={props.reconnecting}
          reloads={self}
          onDismiss={props.onDismissRun}
          onTryAgain={isFailure(run) && run.kind === 'update' && run.to && !busy ? () => setConfirm({ version: run.to }) : undefined}
        />
      ) : null}

      <section class="card" aria-labelledby="current-title">
        <div class="card-head">
          <h2 class="card-title" id="current-title">
            Current version
          </h2>
          <button type="button" onClick={check} disabled={checking || !status || status.checksDisabled || busy}>
            {checking ? 'Checking…' : 'Check for updates'}
          </button>
        </div>
        {status ? <StatusFacts status={status} now={props.now} self={self} label={props.label} hintPage={hintPage} /> : <p class="muted">Loading…</p>}
      </section>

      {status?.updateAvailable && latest ? (
        <section class="card" id="whats-new" aria-labelledby="available-title" tabindex={-1} data-failed={failedEarlier(latest.version) ? 'true' : undefined}>
          <div class="card-head">
            <div>
              <h2 class="card-title" id="available-title">
                {failedEarlier(latest.version) ? `Version ${latest.version} failed to install` : `Version ${latest.version} is available`}
              </h2>
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
                      <option value={r.version}>
                        {r.version}
                        {failedEarlier(r.version) ? ' (failed before)' : ''}
                      </option>
                    ))}
                  </select>
                </>
              ) : null}
              <button type="button" class={failedEarlier(target) ? '' : 'primary'} disabled={busy} onClick={() => setConfirm({ version: target })}>
                {failedEarlier(target) ? `Try ${target} again` : 'Update now'}
              </button>
            </div>
          </div>
          {failedEarlier(latest.version) && lastFailed ? (
            <p class="notice warn" data-testid="failed-release-note">
              Installing {latest.version} failed {timeAgo(lastFailed.finishedAt, props.now)}
              {lastFailed.status === 'rolled_back' ? ` and ${lastFailed.from.version} was restored` : ''}. A release that fails its build or health check fails the same way again; the next
              release is offered as soon as it is published.
            </p>
          ) : null}
          <div class="notes" data-testid="release-notes" dangerouslySetInnerHTML={{ __html: renderMarkdown(latest.notesMarkdown || '_No release notes._') }} />
          {latest.url && /^https?:/.test(latest.url) ? (
            <p>
              <a href={latest.url} target="_blank" rel="noopener noreferrer">
                View release {latest.tag} on GitHub
              </a>
            </p>
          ) : null}
        </section>
      ) : null}

      {self ? <SourceCard status={status} onSaved={() => props.refresh()} /> : null}

      <AutoUpdateCard app={props.app} now={props.now} />

      <section class="card" aria-labelledby="history-title">
        <h2 class="card-title" id="history-title">
          History
        </h2>
        <HistoryTable entries={props.history} />
      </section>

      <ConfirmDialog
        open={confirm !== null}
        title={`Update to ${confirm?.version ?? ''}?`}
        confirmLabel={`Update to ${confirm?.version ?? ''}`}
        onCancel={() => setConfirm(null)}
        onConfirm={() => confirm && startUpdate(confirm.version)}
      >
        {confirm && failedEarlier(confirm.version) ? (
          <p class="notice warn">The last attempt to install {confirm.version} failed. Unless its cause was on this server (network, disk space), it fails the same way again.</p>
        ) : null}
        {self ? (
          <p>
            Upkeep will back up <code>data/</code>, install {confirm?.version} and restart the app. It is unavailable for a few seconds while it restarts.
          </p>
        ) : (
          <p>
            Upkeep will back up the data of {props.label}, install {confirm?.version} and restart {props.label}. It is unavailable for a few seconds while it restarts.
          </p>
        )}
        <p class="muted">If the new version does not come up healthy, the previous version and its data are restored automatically.</p>
      </ConfirmDialog>
    </>
  )
}

/** Version, commit, when releases were checked, and whether that answer can be trusted. */
function StatusFacts({ status, now, self, label, hintPage }: { status: UpdatesStatus; now: number; self: boolean; label: string; hintPage: HintPage }) {
  const checkError = status.error && status.error.code !== 'RATE_LIMITED' && !status.checksDisabled ? status.error : null
  // "Up to date" only from a complete answer of the configured repository's releases.
  const upToDate = isUpToDate(status)
  // Another app whose definition names a git remote: its tags are the whole answer, not a fallback.
  const tagsByDefinition = !self && status.via === 'git' && status.source?.from === 'definition' && !checkError
  return (
    <>
      <dl class="facts">
        <dt>Version</dt>
        <dd data-testid="current-version">
          {status.current.version === 'unknown' && !self ? `Not known until Upkeep has installed or updated ${label}` : status.current.version}
        </dd>
        <dt>Commit</dt>
        <dd class="mono" title={status.current.commit}>
          {status.current.commit.slice(0, 12)}
        </dd>
        {!self && status.source ? (
          <>
            <dt>Releases from</dt>
            <dd class="mono" data-testid="release-source">
              {status.source.repo}
            </dd>
          </>
        ) : null}
        {status.current.installedFrom ? (
          <>
            <dt>Installed from</dt>
            <dd data-testid="installed-from" title={installedFromKey(status.current.installedFrom)}>
              {installedFromSentence(status.current.installedFrom)}
            </dd>
          </>
        ) : null}
        <dt>Last checked</dt>
        <dd data-testid="last-checked">
          {status.checksDisabled
            ? 'Never: checks are disabled (UPDATE_CHECK_DISABLED=true), this server never contacts GitHub.'
            : status.checkedAt
              ? `${timeAgo(status.checkedAt, now)}${status.via === 'git' && !tagsByDefinition ? ' (tags of the git remote origin; GitHub could not be reached)' : ''}`
              : 'Not yet'}
        </dd>
        {!status.checksDisabled && status.nextCheckAt && status.error?.code === 'RATE_LIMITED' ? (
          <>
            <dt>Next check</dt>
            <dd>
              GitHub's rate limit was reached; the next check can happen {timeUntil(status.nextCheckAt, now)} ({formatDate(status.nextCheckAt)}).
            </dd>
          </>
        ) : null}
      </dl>
      {checkError ? (
        <div class="notice warn" role="status" data-testid="check-error">
          <strong>{status.source ? 'The last check for updates failed' : self ? 'Upkeep does not know where updates come from' : `Upkeep does not know where updates of ${label} come from`}</strong>
          <div>{capitalise(splitMessage(checkError.message).headline)}</div>
          {checkError.hint ? (
            <div>
              <Hint hint={checkError.hint} page={hintPage} />
            </div>
          ) : null}
        </div>
      ) : null}
      {status.via === 'git' && !status.checksDisabled ? (
        <p class="muted" data-testid="via-git">
          {tagsByDefinition ? (
            <>The versions offered here are the release tags of its git remote, as its definition says; they come without release notes.</>
          ) : (
            <>
              The versions offered here are the release tags of {self ? "this checkout's" : 'the checkout’s'} git remote <code>origin</code>, not the GitHub Releases of {status.source ? <code>{status.source.repo}</code> : 'the repository'}, and come without release notes.
            </>
          )}
        </p>
      ) : null}
      <p data-testid="update-state">
        {upToDate
          ? `You are up to date: ${status.current.version} is the newest release of ${status.source!.repo}.`
          : status.updateAvailable || status.checksDisabled
            ? null
            : !self && (!status.source || checkError)
              ? `Whether a newer version exists is not known until the release list of ${label} can be read.`
              : !status.source
                ? 'Whether a newer version exists is not known: set where updates come from under Update source below.'
                : checkError || status.via === 'git'
                  ? 'Whether a newer version exists is not known until GitHub answers.'
                  : 'Not checked yet.'}
      </p>
    </>
  )
}

function SourceCard({ status, onSaved }: { status: UpdatesStatus | undefined; onSaved: () => void }) {
  const [settings, setSettings] = useState<SettingsView | null>(null)
  const [repo, setRepo] = useState('')
  const [channel, setChannel] = useState<'stable' | 'prerelease'>('stable')
  const [checkEnabled, setCheckEnabled] = useState(true)
  const [message, setMessage] = useState<FormMessageValue | null>(null)
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
      .catch((err) => setMessage({ kind: 'error', text: errorText(err).message }))
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
      setMessage({ kind: 'error', text: t.message, ...(t.hint ? { hint: t.hint } : {}) })
    } finally {
      setSaving(false)
    }
  }

  const pinned = settings?.env.UPDATE_REPO ?? null
  return (
    <section class="card" id="update-source" aria-labelledby="source-title">
      <h2 class="card-title" id="source-title">
        Update source
      </h2>
      {status?.source ? (
        <p>
          Releases come from <strong class="mono">{status.source.repo}</strong>, set by {SOURCE_FROM[status.source.from] ?? status.source.from}.
        </p>
      ) : (
        <p class="muted" data-testid="no-source">
          No repository is set: Upkeep cannot check for updates until you store one here (or set <code>UPDATE_REPO</code>).
        </p>
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
            {pinned ? (
              <>
                <code>UPDATE_REPO={pinned}</code> is set in the environment and wins over this setting.
              </>
            ) : (
              "owner/name or a GitHub URL; leave empty to use the checkout's git remote origin."
            )}
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
        <FormMessage message={message} />
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

/** Past updates; on a phone each row is a small card (the cells carry their column's name). */
function HistoryTable({ entries }: { entries: HistoryEntries | null }) {
  if (entries === null) return <p class="muted">Loading…</p>
  if (!entries.length) return <p class="muted">No updates yet.</p>
  return (
    <div class="table-wrap">
      <table class="history" data-testid="history" role="table">
        <thead role="rowgroup">
          <tr role="row">
            <th scope="col" role="columnheader">
              From
            </th>
            <th scope="col" role="columnheader">
              To
            </th>
            <th scope="col" role="columnheader">
              Status
            </th>
            <th scope="col" role="columnheader">
              When
            </th>
            <th scope="col" role="columnheader">
              Duration
            </th>
            <th scope="col" role="columnheader">
              Backup
            </th>
          </tr>
        </thead>
        <tbody role="rowgroup">
          {entries.map((e) => (
            <tr data-id={e.id} role="row">
              <td role="cell" data-label="From">
                <div>{e.from.version || '—'}</div>
              </td>
              <td role="cell" data-label="To">
                <div>
                  {e.to.version || '—'}
                  {e.to.installedFrom ? (
                    <div class="muted" data-testid="history-installed-from" title={installedFromKey(e.to.installedFrom)}>
                      {installedFromShort(e.to.installedFrom)}
                    </div>
                  ) : null}
                </div>
              </td>
              <td role="cell" data-label="Status">
                <div>
                  <span class={`badge ${e.status}`}>{STATUS_TEXT[e.status] ?? e.status}</span>
                  {e.error ? (
                    <div class="muted" title={e.error.message}>
                      {capitalise(splitMessage(e.error.message).headline)}
                    </div>
                  ) : null}
                </div>
              </td>
              <td role="cell" data-label="When" title={e.startedAt}>
                <div>{formatDate(e.startedAt)}</div>
              </td>
              <td role="cell" data-label="Duration">
                <div>{formatDuration(e.durationMs)}</div>
              </td>
              <td role="cell" data-label="Backup">
                <div class="mono">{e.backupPath ? e.backupPath.split('/').pop() : '—'}</div>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  )
}
