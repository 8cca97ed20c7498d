import { useCallback, useEffect, useState } from 'hono/jsx/dom'
import { api, ApiError, UNAUTHORIZED_EVENT, type HistoryEntries, type UpdatesStatus } from './api'
import { Layout } from './components/layout'
import { UpdateBanner } from './components/update-banner'
import { dismissFailure, isFailureDismissed } from './lib/failure-dismissal'
import { blamesRelease, failedVersion, lastFailure } from './lib/last-failure'
import { isFailure } from './lib/run-outcome'
import { runFromHistory } from './lib/update-progress'
import { useNow } from './lib/use-now'
import { takeJustUpdated, useUpdateRun } from './lib/use-update-run'
import { LoginPage } from './pages/login'
import { OverviewPage } from './pages/overview'
import { SoftwareUpdatesPage } from './pages/software-updates'

const UPDATES_PATH = '/settings/updates'
const justUpdated = takeJustUpdated()

export function App() {
  const [path, setPath] = useState(window.location.pathname)
  const [session, setSession] = useState<'unknown' | 'in' | 'out'>('unknown')
  const [status, setStatus] = useState<UpdatesStatus | undefined>(undefined)
  const [statusError, setStatusError] = useState<ApiError | null>(null)
  const [history, setHistory] = useState<HistoryEntries | null>(null)
  const [confirmOnOpen, setConfirmOnOpen] = useState(false)
  const updateRun = useUpdateRun()
  const run = updateRun.run
  // Every second while an update runs (elapsed time, the bar), else enough for "checked N minutes ago".
  const now = useNow(run?.status === 'running' ? 1000 : 30_000)

  const navigate = useCallback((to: string, hash = '') => {
    if (to + hash !== window.location.pathname + window.location.hash) window.history.pushState(null, '', to + hash)
    setPath(to)
  }, [])

  const refresh = useCallback(async (next?: UpdatesStatus): Promise<UpdatesStatus | undefined> => {
    try {
      const s = next ?? (await api.updates())
      setStatus(s)
      setStatusError(null)
      if (s.running?.updateId && s.running.state !== 'interrupted') updateRun.follow(s.running.updateId)
      // Requested but not yet journaled: ask again shortly for its id.
      else if (s.running && s.running.state !== 'interrupted' && !s.running.updateId) window.setTimeout(() => void refresh(), 1000)
      return s
    } catch (err) {
      if (err instanceof ApiError && err.status !== 401) setStatusError(err)
      return undefined
    }
  }, [])

  const loadHistory = useCallback(async () => {
    try {
      const { entries } = await api.history()
      setHistory(entries)
      return entries
    } catch {
      setHistory((h) => h ?? [])
      return null
    }
  }, [])

  useEffect(() => {
    const onPop = () => setPath(window.location.pathname)
    const onUnauthorized = () => setSession('out')
    window.addEventListener('popstate', onPop)
    window.addEventListener(UNAUTHORIZED_EVENT, onUnauthorized)
    api
      .session()
      .then((s) => setSession(s.authenticated ? 'in' : 'out'))
      .catch(() => setSession('out'))
    return () => {
      window.removeEventListener('popstate', onPop)
      window.removeEventListener(UNAUTHORIZED_EVENT, onUnauthorized)
    }
  }, [])

  useEffect(() => {
    if (session !== 'in') return
    void (async () => {
      const s = await refresh()
      const entries = await loadHistory()
      // After a reload the live run is gone: the last failure comes back from the history until dismissed.
      const failure = lastFailure(entries)
      if (failure && !s?.running && !isFailureDismissed(failure.id)) updateRun.follow(failure.id, runFromHistory(failure))
    })()
  }, [session])

  // A run that ended changes the history, the running version and what is available.
  useEffect(() => {
    if (run && run.status !== 'running' && !run.fromHistory) {
      void loadHistory()
      void refresh()
    }
  }, [run?.updateId, run?.status])

  useEffect(() => {
    document.title = path === UPDATES_PATH ? 'Software Updates · Upkeep' : 'Upkeep'
  }, [path])

  if (session === 'unknown') return <p class="content muted">Loading…</p>
  if (session === 'out') return <LoginPage onLogin={() => setSession('in')} />

  const logout = async () => {
    await api.logout().catch(() => {})
    setSession('out')
  }
  const failed = failedVersion(history) ?? (isFailure(run) && run.kind === 'update' && blamesRelease(run) ? run.to : undefined)
  const onDismissFailure = () => {
    if (run) dismissFailure(run.updateId)
    updateRun.clear()
  }
  const showRun = () => {
    navigate(UPDATES_PATH, '#update-run')
    window.setTimeout(() => document.getElementById('update-run')?.focus(), 50)
  }

  const banner = (
    <UpdateBanner
      status={status}
      onUpdatesPage={path === UPDATES_PATH}
      run={run}
      now={now}
      restarting={updateRun.restarting}
      failedVersion={failed}
      onUpdateNow={() => {
        setConfirmOnOpen(true)
        navigate(UPDATES_PATH)
      }}
      onSeeWhatsNew={() => {
        navigate(UPDATES_PATH, '#whats-new')
        window.setTimeout(() => {
          const el = document.getElementById('whats-new')
          el?.scrollIntoView({ block: 'start' })
          el?.focus()
        }, 50)
      }}
      onShowRun={showRun}
      onDismissFailure={onDismissFailure}
    />
  )

  return (
    <Layout path={path} version={status?.current.version} banner={banner} onNavigate={navigate} onLogout={logout}>
      {/* One keyed element per page: hono/jsx/dom left parts of the previous page's fragment in place (a run panel on Overview). */}
      <div class="page" key={path === UPDATES_PATH ? 'updates' : 'overview'}>
        {path === UPDATES_PATH ? (
          <SoftwareUpdatesPage
            status={status}
            statusError={statusError}
            refresh={refresh}
            run={run}
            now={now}
            attempts={updateRun.attempts}
            restarting={updateRun.restarting}
            reconnecting={updateRun.connection === 'reconnecting'}
            follow={updateRun.follow}
            history={history}
            failedVersion={failed}
            justUpdated={justUpdated}
            confirmOnOpen={confirmOnOpen}
            onConfirmShown={() => setConfirmOnOpen(false)}
            onDismissFailure={onDismissFailure}
          />
        ) : (
          <OverviewPage status={status} now={now} run={run} failedVersion={failed} onOpenUpdates={() => navigate(UPDATES_PATH)} onShowRun={showRun} />
        )}
      </div>
    </Layout>
  )
}
