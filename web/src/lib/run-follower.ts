import type { StatusEvent } from '../../../updater/shared/status'
import { duringServerRestart, mayRestartServer } from './server-restart'
import { applyEvent, type RunView } from './update-progress'

export type Connection = 'idle' | 'live' | 'reconnecting'

/** Waits between reconnects: quick at first (a restart takes a second or two), then every 2 s. */
const RETRY_MS = [500, 1000, 2000]
/** A finished run's events are replayed for its log; the stream is closed after this long at most. */
const REPLAY_MS = 10_000

/** What the page shows of one app's update run. */
export interface FollowedRun {
  /** The run (while the server restarts: with the restart as its running step). */
  run: RunView | undefined
  connection: Connection
  attempts: number
  /** Upkeep's own server is restarting (only an update of Upkeep restarts it). */
  restarting: boolean
}

export const IDLE: FollowedRun = { run: undefined, connection: 'idle', attempts: 0, restarting: false }

export interface RunFollowerOptions {
  /** The app's event stream, resumed after `lastEventId`. */
  eventsUrl: (lastEventId?: number) => string
  /**
   * The update restarts the server that streams its events (Upkeep's own): a broken stream may
   * be the restart, /api/health tells which server answers, and a complete run reloads the page.
   */
  restartsServer: boolean
  /** GET /api/health (`startedAt` tells one server process from the next). */
  health: () => Promise<{ version: string; startedAt: string }>
  /** Upkeep's run completed and its new version answers: reload the page onto it. */
  reloadOnto: (run: RunView) => void
  /** Called after every change of what `state()` answers. */
  onChange: () => void
}

export interface RunFollower {
  state(): FollowedRun
  /**
   * Starts following `updateId` (from POST …/apply or a running update). With `initial` (a
   * finished run from the history) shows it at once and, unless `replay` is false, replays its
   * events for the log while the status file still has them.
   */
  follow(updateId: string, initial?: RunView, opts?: { replay?: boolean }): void
  /** Replays the log of the finished run shown from the history, once. */
  replay(): void
  /** Forgets the run shown (a dismissed failure or outcome). */
  clear(): void
  stop(): void
}

interface Internal {
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
  /** The finished run shown has had its log replayed (or that was tried). */
  replayDone: boolean
  /** `startedAt` of the server the stream came from: another one (or none) means it restarted. */
  serverStartedAt?: string
  disconnectedAt?: number
  /** When the server went away (browser clock), for the restart step's elapsed share of the bar. */
  restartSince?: number
  connection: Connection
  attempts: number
  restarting: boolean
}

/**
 * Follows one app's update runs live over SSE. Upkeep's own update restarts the server: the
 * stream breaks, and we reconnect with the last event id until the new server answers.
 * Meanwhile `restarting` is true when the update is past its build (it restarts the server then)
 * or /api/health shows the server went away or changed, and false again when the same server
 * keeps answering. When Upkeep's run completes, `reloadOnto` takes the page onto the new version.
 * Another app's update leaves the server up: a broken stream is only reconnected.
 */
export function createRunFollower(opts: RunFollowerOptions): RunFollower {
  const s: Internal = { stopped: true, live: false, replaying: false, replayDone: false, connection: 'idle', attempts: 0, restarting: false }
  let snapshot: FollowedRun = IDLE
  const changed = () => {
    const run = s.run && s.restarting ? duringServerRestart(s.run, s.restartSince ?? Date.now()) : s.run
    snapshot = { run, connection: s.connection, attempts: s.attempts, restarting: s.restarting }
    opts.onChange()
  }
  const set = (patch: Partial<Pick<Internal, 'connection' | 'attempts' | 'restarting'>>) => {
    if (Object.entries(patch).every(([k, v]) => s[k as keyof typeof patch] === v)) return
    Object.assign(s, patch)
    changed()
  }

  function stop() {
    s.stopped = true
    s.live = false
    s.es?.close()
    s.es = undefined
    if (s.timer) window.clearTimeout(s.timer)
    if (s.replayTimer) window.clearTimeout(s.replayTimer)
    set({ connection: 'idle', restarting: false })
  }

  async function waitAndReload(view: RunView) {
    // The health step saw the new version; make sure this browser reaches it too, then reload.
    for (;;) {
      try {
        if ((await opts.health()).version === view.to) break
      } catch {
        /* restarting: try again */
      }
      await new Promise((r) => setTimeout(r, RETRY_MS[1]))
    }
    opts.reloadOnto(view)
  }

  /** Remembers which server answers (`probe` false), or checks whether it went away or changed. */
  async function noteServer(probe: boolean) {
    if (!opts.restartsServer) return
    const sentAt = Date.now()
    let startedAt: string | undefined
    try {
      startedAt = (await opts.health()).startedAt
    } catch {
      /* down */
    }
    if (!probe) s.serverStartedAt = startedAt
    else if (s.stopped || s.live || s.disconnectedAt === undefined) return
    else if (startedAt === undefined || startedAt !== s.serverStartedAt) set({ restarting: true })
    // The same server still answers well after the stream broke: the connection dropped, not the server.
    // (Right after the break the old server may still answer on a kept-alive connection while it drains.)
    else if (sentAt - s.disconnectedAt > 1500) set({ restarting: false })
  }

  function connect() {
    if (s.stopped) return
    const es = new EventSource(opts.eventsUrl(s.replaying ? undefined : s.run?.lastEventId))
    s.es = es
    es.onopen = () => {
      s.live = true
      s.disconnectedAt = undefined
      set({ connection: 'live', attempts: 0 })
      void noteServer(false)
      // The restart shown meanwhile stays until the events missed arrive (the first comes at once),
      // so the list does not step back to the switch for a moment.
      if (s.restarting) s.timer = window.setTimeout(() => set({ restarting: false }), 1500)
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
      if (s.replaying) {
        // A finished run is shown whole once its last event is in, not replayed step by step.
        s.replayed = applyEvent(s.replayed, event, Date.now())
        if (s.replayed && s.replayed.status !== 'running') {
          s.run = { ...s.replayed, fromHistory: true }
          changed()
          stop()
        }
        return
      }
      const next = applyEvent(s.run, event, Date.now())
      const wasRestarting = s.restarting
      s.restarting = false
      if (next === s.run) {
        if (wasRestarting) changed()
        return
      }
      s.run = next
      changed()
      if (next && next.status !== 'running') {
        stop()
        if (next.status === 'complete' && opts.restartsServer) void waitAndReload(next)
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
        if (opts.restartsServer && mayRestartServer(s.run)) s.restarting = true
      }
      set({ connection: 'reconnecting', attempts: s.attempts + 1 })
      void noteServer(true)
      const down = Date.now() - s.disconnectedAt
      s.timer = window.setTimeout(connect, RETRY_MS[down < 2000 ? 0 : down < 6000 ? 1 : 2])
    }
  }

  function startReplay() {
    s.stopped = false
    s.replaying = true
    s.replayDone = true
    s.replayed = undefined
    s.replayTimer = window.setTimeout(stop, REPLAY_MS)
    connect()
  }

  return {
    state: () => snapshot,
    follow(updateId, initial, followOpts = {}) {
      if (s.updateId === updateId && (!s.stopped || (s.run && s.run.status !== 'running'))) return
      stop()
      s.stopped = false
      s.replaying = false
      s.replayDone = false
      s.updateId = updateId
      s.run = initial
      s.disconnectedAt = undefined
      s.restarting = false
      changed()
      if (!initial) connect()
      else if (followOpts.replay !== false) startReplay()
      else s.stopped = true
    },
    replay() {
      if (!s.run?.fromHistory || s.replayDone || !s.stopped) return
      startReplay()
    },
    clear() {
      stop()
      s.run = undefined
      s.updateId = undefined
      changed()
    },
    stop,
  }
}
