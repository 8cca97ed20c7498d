import { useCallback, useEffect, useState } from 'hono/jsx/dom'
import { api, ApiError, UNAUTHORIZED_EVENT, type UpdatesStatus } from './api'
import { Layout } from './components/layout'
import { UpdateBanner } from './components/update-banner'
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
  const [confirmOnOpen, setConfirmOnOpen] = useState(false)
  const updateRun = useUpdateRun()

  const navigate = useCallback((to: string, hash = '') => {
    if (to + hash !== window.location.pathname + window.location.hash) window.history.pushState(null, '', to + hash)
    setPath(to)
  }, [])

  const refresh = useCallback(async (next?: UpdatesStatus) => {
    try {
      const s = next ?? (await api.updates())
      setStatus(s)
      setStatusError(null)
      if (s.running?.updateId && s.running.state !== 'interrupted') updateRun.follow(s.running.updateId)
      // Requested but not yet journaled: ask again shortly for its id.
      else if (s.running && !s.running.updateId) window.setTimeout(() => void refresh(), 1000)
    } catch (err) {
      if (err instanceof ApiError && err.status !== 401) setStatusError(err)
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
    if (session === 'in') void refresh()
  }, [session])

  useEffect(() => {
    document.title = path === UPDATES_PATH ? 'Software Updates · Upkeep' : 'Upkeep'
  }, [path])

  if (session === 'unknown') return <p class="content muted">Loading…</p>
  if (session === 'out') return <LoginPage onLogin={() => setSession('in')} />

  const logout = async () => {
    await api.logout().catch(() => {})
    setSession('out')
  }

  const banner = (
    <UpdateBanner
      status={status}
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
    />
  )

  return (
    <Layout path={path} version={status?.current.version} banner={banner} onNavigate={navigate} onLogout={logout}>
      {path === UPDATES_PATH ? (
        <SoftwareUpdatesPage
          status={status}
          statusError={statusError}
          refresh={refresh}
          run={updateRun.run}
          connection={updateRun.connection}
          attempts={updateRun.attempts}
          follow={updateRun.follow}
          justUpdated={justUpdated}
          confirmOnOpen={confirmOnOpen}
          onConfirmShown={() => setConfirmOnOpen(false)}
        />
      ) : (
        <OverviewPage status={status} onOpenUpdates={() => navigate(UPDATES_PATH)} />
      )}
    </Layout>
  )
}
