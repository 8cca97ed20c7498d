import { useCallback, useEffect, useRef, useState } from 'hono/jsx/dom'
import type { StatusEvent } from '../../../updater/shared/status'
import { api } from '../api'
import { duringServerRestart, mayRestartServer } from './server-restart'
import { applyEvent, type RunView } from './update-progress'

export type Connection = 'idle' | 'live' | 'reconnecting'

/** Waits between reconnects: quick at first (a restart takes a second or two), then every 2 s. */
const RETRY_MS = [500, 1000, 2000]
/** A finished run's events are replayed for its log; the stream is closed after this long at most. */
const REPLAY_MS = 10_000
const JUST_UPDATED_KEY = 'upkeep.justUpdated'

export interface JustUpdated {
  from: string
  to: string
  durationMs?: number
}

/** Set before the reload that lands on a new version; read once by the page after it. */
export function takeJustUpdated(): JustUpdated | null {
  try {
    const raw = sessionStorage.getItem(JUST_UPDATED_KEY)
    sessionStorage.removeItem(JUST_UPDATED_KEY)
    return raw ? (JSON.parse(raw) as JustUpdated) : null
  } catch {
    return null
  }
}

interface FollowState {
  run?: RunView
  updateId?: string
  es?: EventSource
  timer?: number
  replayTimer?: number
  stopped: boolean
  /** The stream is open (events can arrive). */
  live: boolean
  /** Following a finished run from the history: its events only fill in the log. */
  replaying: boolean
  replayed?: RunView
  /** `startedAt` of the server the stream came from: another one (or none) means it restarted. */
  serverStartedAt?: string
  disconnectedAt?: number
  /** When the server went away (browser clock), for the restart step's elapsed share of the bar. */
  restartSince?: number
}

/**
 * Follows one update run live over SSE (`/api/updates/events`). The server restarts during
 * the update: the stream breaks, and we reconnect with the last event id until the new server
 * answers. Meanwhile `restarting` is true when the update is past its build (it restarts the
 * server then) or /api/health shows the server went away or changed, and false again when the
 * same server keeps answering. When the run completes, we wait for /api/health to report the
 * new version and reload the page onto it.
 */
export function useUpdateRun() {
  const [run, setRun] = useState<RunView | undefined>(undefined)
  const [connection, setConnection] = useState<Connection>('idle')
  const [attempts, setAttempts] = useState(0)
  const [restarting, setRestarting] = useState(false)
  const state = useRef<FollowState>({ stopped: true, live: false, replaying: false })

  const stop = useCallback(() => {
    const s = state.current
    s.stopped = true
    s.live = false
    s.es?.close()
    s.es = undefined
    if (s.timer) window.clearTimeout(s.timer)
    if (s.replayTimer) window.clearTimeout(s.replayTimer)
    setConnection('idle')
    setRestarting(false)
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
      await new Promise((r) => setTimeout(r, RETRY_MS[1]))
    }
    try {
      const just: JustUpdated = { from: view.from, to: view.to, ...(view.durationMs !== undefined ? { durationMs: view.durationMs } : {}) }
      sessionStorage.setItem(JUST_UPDATED_KEY, JSON.stringify(just))
    } catch {
      /* no storage: the page still shows the new version after the reload */
    }
    window.location.reload()
  }, [])

  /** Remembers which server answers (`probe` false), or checks whether it went away or changed. */
  const noteServer = useCallback(async (probe: boolean) => {
    const s = state.current
    const sentAt = Date.now()
    let startedAt: string | undefined
    try {
      startedAt = (await api.health()).startedAt
    } catch {
      /* down */
    }
    if (!probe) s.serverStartedAt = startedAt
    else if (s.stopped || s.live || s.disconnectedAt === undefined) return
    else if (startedAt === undefined || startedAt !== s.serverStartedAt) setRestarting(true)
    // The same server still answers well after the stream broke: the connection dropped, not the server.
    // (Right after the break the old server may still answer on a kept-alive connection while it drains.)
    else if (sentAt - s.disconnectedAt > 1500) setRestarting(false)
  }, [])

  const connect = useCallback(() => {
    const s = state.current
    if (s.stopped) return
    const last = s.run?.lastEventId
    const es = new EventSource(`/api/updates/events${last ? `?lastEventId=${last}` : ''}`)
    s.es = es
    es.onopen = () => {
      s.live = true
      setConnection('live')
      setAttempts(0)
      s.disconnectedAt = undefined
      void noteServer(false)
      // The restart shown meanwhile stays until the events missed arrive (the first comes at once),
      // so the list does not step back to the switch for a moment.
      s.timer = window.setTimeout(() => setRestarting(false), 1500)
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
      setRestarting(false)
      if (s.replaying) {
        // A finished run is shown whole once its last event is in, not replayed step by step.
        s.replayed = applyEvent(s.replayed, event, Date.now())
        if (s.replayed && s.replayed.status !== 'running') {
          s.run = { ...s.replayed, fromHistory: true }
          setRun(s.run)
          stop()
        }
        return
      }
      const next = applyEvent(s.run, event, Date.now())
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
      s.live = false
      if (s.stopped) return
      if (s.disconnectedAt === undefined) {
        s.disconnectedAt = Date.now()
        s.restartSince = s.disconnectedAt
        if (mayRestartServer(s.run)) setRestarting(true)
      }
      setConnection('reconnecting')
      setAttempts((n) => n + 1)
      void noteServer(true)
      const down = Date.now() - s.disconnectedAt
      s.timer = window.setTimeout(connect, RETRY_MS[down < 2000 ? 0 : down < 6000 ? 1 : 2])
    }
  }, [stop, reloadOnto, noteServer])

  /**
   * Starts following `updateId` (from POST /api/updates/apply or a running update). With
   * `initial` (a finished run from the history), shows it at once and replays its events, if
   * the status file still has them, for the log.
   */
  const follow = useCallback(
    (updateId: string, initial?: RunView) => {
      const s = state.current
      if (s.updateId === updateId && (!s.stopped || (s.run && s.run.status !== 'running'))) return
      stop()
      s.stopped = false
      s.replaying = initial !== undefined
      s.replayed = undefined
      s.updateId = updateId
      s.run = initial
      s.disconnectedAt = undefined
      setRun(initial)
      if (initial) s.replayTimer = window.setTimeout(stop, REPLAY_MS)
      connect()
    },
    [connect, stop],
  )

  /** Forgets the run shown (a dismissed failure). */
  const clear = useCallback(() => {
    stop()
    const s = state.current
    s.run = undefined
    s.updateId = undefined
    setRun(undefined)
  }, [stop])

  useEffect(() => stop, [stop])

  const view = run && restarting ? duringServerRestart(run, state.current.restartSince ?? Date.now()) : run
  return { run: view, connection, attempts, restarting, follow, stop, clear }
}
