import { useCallback, useEffect, useRef, useState } from 'hono/jsx/dom'
import { api, ApiError, appApi, UNAUTHORIZED_EVENT, type AppSummary, type HistoryEntries, type UpdatesStatus } from './api'
import { Layout } from './components/layout'
import { UpdateBanner, type BannerApp } from './components/update-banner'
import { APPS_PATH, pageKey, pathOf, routeOf, UPKEEP, updatesPathOf } from './lib/app-routes'
import { appLabel, failedVersionOfLastRun } from './lib/app-state'
import { dismissFailure, isFailureDismissed } from './lib/failure-dismissal'
import { inPage } from './lib/in-page-link'
import { blamesRelease, failedVersion, lastFailure } from './lib/last-failure'
import { isFailure } from './lib/run-outcome'
import { runFromHistory } from './lib/update-progress'
import { useNow } from './lib/use-now'
import { takeJustUpdated, useUpdateRuns } from './lib/use-update-run'
import { AppsPage, type AppRow } from './pages/apps'
import { LoginPage } from './pages/login'
import { OverviewPage } from './pages/overview'
import { SoftwareUpdatesPage } from './pages/software-updates'

const justUpdated = takeJustUpdated()
/** How often the apps list is asked again: updates started elsewhere (another tab, a schedule) show up. */
const LIST_POLL_MS = 30_000

type Running = UpdatesStatus['running']

export function App() {
  const [path, setPath] = useState(window.location.pathname)
  const [session, setSession] = useState<'unknown' | 'in' | 'out'>('unknown')
  /** GET /api/apps: every app, Upkeep first (undefined until it answers). */
  const [list, setList] = useState<AppSummary[] | undefined>(undefined)
  const [listError, setListError] = useState<ApiError | null>(null)
  /** The freshest status of each app: from the list, or from the app's own GET …/updates. */
  const [statuses, setStatuses] = useState<Record<string, UpdatesStatus>>({})
  const [statusErrors, setStatusErrors] = useState<Record<string, ApiError>>({})
  /** The history of the apps whose page was opened (or whose last update failed). */
  const [histories, setHistories] = useState<Record<string, HistoryEntries>>({})
  /** The app whose page opens with the confirmation (the banner's "Update now"). */
  const [confirmOnOpen, setConfirmOnOpen] = useState<string | null>(null)
  const runs = useUpdateRuns()
  const retrying = useRef(new Set<string>())
  const ended = useRef(new Map<string, string>())

  const route = routeOf(path)
  const pageApp = route.page === 'updates' ? route.app : undefined
  const anyRunning = runs.apps().some((a) => runs.of(a).run?.status === 'running')
  // Every second while an update runs (elapsed time, the bar), else enough for "checked N minutes ago".
  const now = useNow(anyRunning ? 1000 : 30_000)

  const navigate = useCallback((to: string, hash = '') => {
    if (to + hash !== window.location.pathname + window.location.hash) window.history.pushState(null, '', to + hash)
    setPath(to)
  }, [])

  const refreshRef = useRef<(app: string) => Promise<unknown>>(async () => undefined)
  /** Follows the update the server reports for `app`; one requested but not yet journaled is asked about again shortly, for its id. */
  const noteRunning = useCallback((app: string, running: Running) => {
    if (running?.updateId && running.state !== 'interrupted') runs.follow(app, running.updateId)
    else if (running && running.state !== 'interrupted' && !running.updateId && !retrying.current!.has(app)) {
      retrying.current!.add(app)
      window.setTimeout(() => {
        retrying.current!.delete(app)
        void refreshRef.current!(app)
      }, 1000)
    }
  }, [])

  const refresh = useCallback(async (app: string, next?: UpdatesStatus): Promise<UpdatesStatus | undefined> => {
    try {
      const s = next ?? (await appApi(app).updates())
      setStatuses((m) => ({ ...m, [app]: s }))
      setStatusErrors((m) => {
        if (!m[app]) return m
        const { [app]: _gone, ...rest } = m
        return rest
      })
      noteRunning(app, s.running)
      return s
    } catch (err) {
      if (err instanceof ApiError && err.status !== 401) setStatusErrors((m) => ({ ...m, [app]: err }))
      return undefined
    }
  }, [])
  refreshRef.current = refresh

  const refreshList = useCallback(async (): Promise<AppSummary[] | undefined> => {
    try {
      const { apps } = await api.apps()
      setList(apps)
      setListError(null)
      setStatuses((m) => {
        const next = { ...m }
        for (const a of apps) if (a.status) next[a.name] = a.status
        return next
      })
      for (const a of apps) if (a.status) noteRunning(a.name, a.status.running)
      return apps
    } catch (err) {
      if (err instanceof ApiError && err.status !== 401) setListError(err)
      return undefined
    }
  }, [])

  const loadHistory = useCallback(async (app: string) => {
    try {
      const { entries } = await appApi(app).history()
      setHistories((m) => ({ ...m, [app]: entries }))
      return entries
    } catch {
      setHistories((m) => (m[app] ? m : { ...m, [app]: [] }))
      return null
    }
  }, [])

  /** After a reload the live run is gone: an app's last failure comes back from its history until dismissed. */
  const restoreFailure = useCallback((app: string, entries: HistoryEntries | null, running: Running | undefined, replay: boolean) => {
    const failure = lastFailure(entries)
    if (failure && !running && !isFailureDismissed(app, failure.id)) runs.follow(app, failure.id, runFromHistory(failure), { replay })
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

  // /apps/upkeep is Upkeep's page, known as Settings → Software Updates.
  useEffect(() => {
    const canonical = pathOf(route)
    if (canonical && canonical !== path) {
      window.history.replaceState(null, '', canonical + window.location.hash)
      setPath(canonical)
    }
  }, [path])

  useEffect(() => {
    if (session !== 'in') return
    const opened = pageApp
    void (async () => {
      const s = await refresh(UPKEEP)
      restoreFailure(UPKEEP, await loadHistory(UPKEEP), s?.running, true)
      // Other apps' failures, for the banner: their logs are replayed only when their page opens.
      for (const a of (await refreshList()) ?? []) {
        if (a.name === UPKEEP || a.name === opened || !a.lastRun || a.lastRun.status === 'complete' || isFailureDismissed(a.name, a.lastRun.id)) continue
        restoreFailure(a.name, await loadHistory(a.name), a.status?.running, false)
      }
    })()
    const poll = window.setInterval(() => void refreshList(), LIST_POLL_MS)
    return () => window.clearInterval(poll)
  }, [session])

  // Another app's page: its status, its history, and its last failure with the log.
  useEffect(() => {
    if (session !== 'in' || !pageApp || pageApp === UPKEEP) return
    void (async () => {
      const [s, entries] = await Promise.all([refresh(pageApp), loadHistory(pageApp)])
      restoreFailure(pageApp, entries, s?.running, true)
      runs.replay(pageApp)
    })()
  }, [session, pageApp])

  // A run that ended changes the history, the running version and what is available.
  const runKeys = runs.apps().map((app) => {
    const r = runs.of(app).run
    return `${app} ${r?.updateId ?? ''} ${r?.status ?? ''} ${r?.fromHistory ? 'h' : ''}`
  })
  useEffect(() => {
    for (const app of runs.apps()) {
      const r = runs.of(app).run
      if (!r || r.status === 'running' || r.fromHistory || ended.current!.get(app) === r.updateId) continue
      ended.current!.set(app, r.updateId)
      void loadHistory(app)
      void refresh(app)
      void refreshList()
    }
  }, [runKeys.join('|')])

  useEffect(() => {
    document.title = route.page === 'updates' ? (route.app === UPKEEP ? 'Software Updates · Upkeep' : `${appLabel(route.app)} · Upkeep`) : route.page === 'apps' ? 'Apps · Upkeep' : 'Upkeep'
  }, [path])

  if (session === 'unknown') return <p class="content muted">Loading…</p>
  if (session === 'out') return <LoginPage onLogin={() => setSession('in')} />

  const logout = async () => {
    await api.logout().catch(() => {})
    setSession('out')
  }

  // Upkeep first, then the list's order; the open page's app even before the list answers.
  const names = [UPKEEP, ...(list ?? []).map((a) => a.name).filter((n) => n !== UPKEEP)]
  if (pageApp && !names.includes(pageApp)) names.push(pageApp)
  const summaryOf = (app: string) => list?.find((a) => a.name === app)
  const failedOf = (app: string): string | undefined => {
    const history = histories[app]
    const run = runs.of(app).run
    const known = history ? failedVersion(history) : failedVersionOfLastRun(summaryOf(app)?.lastRun)
    return known ?? (isFailure(run) && run.kind === 'update' && blamesRelease(run) ? run.to : undefined)
  }

  const focusLater = (id: string, scroll: boolean) =>
    window.setTimeout(() => {
      const el = document.getElementById(id)
      if (scroll) el?.scrollIntoView({ block: 'start' })
      el?.focus()
    }, 50)
  const showRun = (app: string) => {
    navigate(updatesPathOf(app), '#update-run')
    focusLater('update-run', false)
  }
  const dismissRun = (app: string) => {
    const run = runs.of(app).run
    if (run && isFailure(run)) dismissFailure(app, run.updateId)
    runs.clear(app)
  }

  const bannerApps: BannerApp[] = names
    .filter((n) => !summaryOf(n)?.error)
    .map((name) => ({ name, label: appLabel(name), status: statuses[name], followed: runs.of(name), failedVersion: failedOf(name), onPage: pageApp === name, self: name === UPKEEP }))
  const banner = (
    <UpdateBanner
      apps={bannerApps}
      named={(list?.length ?? 1) > 1}
      now={now}
      onUpdateNow={(app) => {
        setConfirmOnOpen(app)
        navigate(updatesPathOf(app))
      }}
      onSeeWhatsNew={(app) => {
        navigate(updatesPathOf(app), '#whats-new')
        focusLater('whats-new', true)
      }}
      onShowRun={showRun}
      onDismissRun={dismissRun}
      onOpenApps={() => navigate(APPS_PATH)}
    />
  )

  const rows: AppRow[] | undefined = list?.map((summary) => ({
    name: summary.name,
    label: appLabel(summary.name),
    summary,
    status: statuses[summary.name] ?? summary.status,
    followed: runs.of(summary.name),
    failedVersion: failedOf(summary.name),
  }))

  let page
  if (route.page === 'updates') {
    const app = route.app
    const followed = runs.of(app)
    page = (
      <SoftwareUpdatesPage
        app={app}
        label={appLabel(app)}
        self={app === UPKEEP}
        status={statuses[app]}
        statusError={statusErrors[app] ?? null}
        refresh={(next?: UpdatesStatus) => refresh(app, next)}
        run={followed.run}
        now={now}
        attempts={followed.attempts}
        restarting={followed.restarting}
        reconnecting={followed.connection === 'reconnecting'}
        follow={(updateId: string) => runs.follow(app, updateId)}
        history={histories[app] ?? null}
        failedVersion={failedOf(app)}
        justUpdated={app === UPKEEP ? justUpdated : null}
        confirmOnOpen={confirmOnOpen === app}
        onConfirmShown={() => setConfirmOnOpen(null)}
        onDismissRun={() => dismissRun(app)}
        onOpenApps={() => navigate(APPS_PATH)}
      />
    )
  } else if (route.page === 'apps') {
    page = <AppsPage rows={rows} error={listError} now={now} onOpen={(app) => navigate(updatesPathOf(app))} />
  } else if (route.page === 'overview') {
    const upkeepRun = runs.of(UPKEEP).run
    page = (
      <OverviewPage
        status={statuses[UPKEEP]}
        now={now}
        run={upkeepRun}
        failedVersion={failedOf(UPKEEP)}
        apps={rows}
        onOpenUpdates={() => navigate(updatesPathOf(UPKEEP))}
        onOpenApps={() => navigate(APPS_PATH)}
        onShowRun={() => showRun(UPKEEP)}
      />
    )
  } else {
    page = (
      <>
        <h1>Not found</h1>
        <p class="lede">There is no page at {path}.</p>
        <p>
          <a href="/" onClick={inPage(() => navigate('/'))}>
            Go to the overview
          </a>
        </p>
      </>
    )
  }

  return (
    <Layout path={path} version={statuses[UPKEEP]?.current.version} banner={banner} onNavigate={navigate} onLogout={logout}>
      {/* One keyed element per page: hono/jsx/dom left parts of the previous page's fragment in place (a run panel on Overview). */}
      <div class="page" key={pageKey(route)}>
        {page}
      </div>
    </Layout>
  )
}
