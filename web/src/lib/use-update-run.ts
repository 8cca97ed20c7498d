import { useCallback, useEffect, useRef, useState } from 'hono/jsx/dom'
import type { StatusEvent } from '../../../updater/shared/status'
import { api } from '../api'
import { applyEvent, type RunView } from './update-progress'

export type Connection = 'idle' | 'live' | 'reconnecting'

const RETRY_MS = 2000
const JUST_UPDATED_KEY = 'upkeep.justUpdated'

/** Set before the reload that lands on a new version; read once by the page after it. */
export function takeJustUpdated(): { from: string; to: string } | null {
  try {
    const raw = sessionStorage.getItem(JUST_UPDATED_KEY)
    sessionStorage.removeItem(JUST_UPDATED_KEY)
    return raw ? (JSON.parse(raw) as { from: string; to: string }) : null
  } catch {
    return null
  }
}

/**
 * Follows one update run live over SSE (`/api/updates/events`). The server restarts during
 * the update: the stream breaks, and we reconnect every 2 s with the last event id until the
 * new server answers. When the run completes, we wait for /api/health to report the new
 * version and reload the page onto it.
 */
export function useUpdateRun() {
  const [run, setRun] = useState<RunView | undefined>(undefined)
  const [connection, setConnection] = useState<Connection>('idle')
  const [attempts, setAttempts] = useState(0)
  const state = useRef<{ run?: RunView; updateId?: string; es?: EventSource; timer?: number; stopped: boolean }>({ stopped: true })

  const stop = useCallback(() => {
    const s = state.current
    s.stopped = true
    s.es?.close()
    s.es = undefined
    if (s.timer) window.clearTimeout(s.timer)
    setConnection('idle')
  }, [])

  const reloadOnto = useCallback(async (view: RunView) => {
    // The health step saw the new version; make sure this browser reaches it too, then reload.
    for (;;) {
      try {
        const health = await api.health()
        if (health.version === view.to) break
      } catch {
        /* restarting: try again */
      }
      await new Promise((r) => setTimeout(r, RETRY_MS))
    }
    try {
      sessionStorage.setItem(JUST_UPDATED_KEY, JSON.stringify({ from: view.from, to: view.to }))
    } catch {
      /* no storage: the page still shows the new version after the reload */
    }
    window.location.reload()
  }, [])

  const connect = useCallback(() => {
    const s = state.current
    if (s.stopped) return
    const last = s.run?.lastEventId
    const es = new EventSource(`/api/updates/events${last ? `?lastEventId=${last}` : ''}`)
    s.es = es
    es.onopen = () => {
      setConnection('live')
      setAttempts(0)
    }
    es.onmessage = (m: MessageEvent<string>) => {
      let event: StatusEvent
      try {
        event = JSON.parse(m.data) as StatusEvent
      } catch {
        return
      }
      // The file may still hold the previous update's events until the updater starts ours.
      if (s.updateId && event.updateId !== s.updateId) return
      const next = applyEvent(s.run, event)
      if (next === s.run) return
      s.run = next
      setRun(next)
      if (next && next.status !== 'running') {
        stop()
        if (next.status === 'complete') void reloadOnto(next)
      }
    }
    es.onerror = () => {
      // EventSource retries by itself on some errors and gives up on others; do it ourselves.
      es.close()
      if (s.stopped) return
      setConnection('reconnecting')
      setAttempts((n) => n + 1)
      s.timer = window.setTimeout(connect, RETRY_MS)
    }
  }, [stop, reloadOnto])

  /** Starts following `updateId` (from POST /api/updates/apply or a running update). */
  const follow = useCallback(
    (updateId: string) => {
      const s = state.current
      if (!s.stopped && s.updateId === updateId) return
      stop()
      s.stopped = false
      s.updateId = updateId
      s.run = undefined
      setRun(undefined)
      connect()
    },
    [connect, stop],
  )

  useEffect(() => stop, [stop])

  return { run, connection, attempts, follow, stop, clear: () => setRun(undefined) }
}
