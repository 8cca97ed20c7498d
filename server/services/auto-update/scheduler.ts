import { setTimeout as delay } from 'node:timers/promises'
import type { Logger } from 'pino'
import type { ReleaseInfo } from '../../../updater/shared/release-cache'
import type { EventInput } from './events'
import { type Attempt, type AutoUpdatePolicy, type Decision, decide, type Reason } from './policy'

/**
 * Runs the policy for every app once a minute and at each window start, and acts on it: asks
 * for an update, pauses an app whose automatic updates keep failing, announces new releases.
 * Everything it touches comes in through `SchedulerDeps`.
 */

export interface AppSnapshot {
  app: string
  policy: AutoUpdatePolicy
  runningVersion: string
  releases: ReleaseInfo[]
  history: Attempt[]
  /** An update of this app is running or was requested: nothing new is started. */
  busy: boolean
  /** A link to the app's page in the web UI, for notifications. */
  url?: string
}

export interface SchedulerClock {
  now(): Date
  /** Resolves after `ms`, or early when `signal` aborts. */
  sleep(ms: number, signal: AbortSignal): Promise<void>
}

/** Real time; `sleep` ends early (without an error) when the scheduler stops. */
export const systemSchedulerClock: SchedulerClock = {
  now: () => new Date(),
  sleep: (ms, signal) => delay(ms, undefined, { signal }).catch(() => {}),
}

/** Which (app, version) pairs were announced as available: in memory, or kept in a file. */
export interface AnnouncedStore {
  has(key: string): Promise<boolean>
  add(key: string): Promise<void>
}

export function memoryAnnounced(): AnnouncedStore & { keys: Set<string> } {
  const keys = new Set<string>()
  return { keys, has: async (k) => keys.has(k), add: async (k) => void keys.add(k) }
}

export interface SchedulerDeps {
  clock: SchedulerClock
  /** Every app with what the policy reads, fresh at each tick. */
  apps(): Promise<AppSnapshot[]>
  /** The one switch for all apps. */
  globalPause(): Promise<boolean>
  /** Starts an update the way "Update now" does, recorded with `trigger: 'auto'`. */
  requestUpdate(app: string, tag: string, opts: { trigger: 'auto' }): Promise<{ updateId: string }>
  /** Persists `paused: true` for the app (the circuit breaker tripped). */
  pauseApp(app: string, reason: Reason): Promise<void>
  notify(input: EventInput): void
  log: Logger
  announced?: AnnouncedStore
  /** Zone of a window calendar that names none. Default: this process's zone. */
  timeZone?: string
}

export interface AppScheduleStatus {
  app: string
  /** ISO time of the evaluation. */
  evaluatedAt: string
  decision: Decision
  /** What the scheduler did about it. */
  acted?: { requested?: { tag: string; updateId: string }; paused?: boolean; error?: string }
}

export interface Scheduler {
  /** Evaluates every app once and acts. */
  tick(): Promise<AppScheduleStatus[]>
  /** Ticks now, then every minute and at each window start, until stop(). */
  start(): void
  stop(): Promise<void>
  /** The last evaluation of each app (the UI's "why has it not installed itself"). */
  status(): AppScheduleStatus[]
}

const MINUTE = 60_000
/** A request the updater never picked up stops blocking new ones after this (as STALE does). */
const PENDING_FOR_MS = 30 * MINUTE

export function createScheduler(deps: SchedulerDeps): Scheduler {
  const log = deps.log.child({ component: 'auto-update' })
  const announced = deps.announced ?? memoryAnnounced()
  const last = new Map<string, AppScheduleStatus>()
  // Asked for but not yet in the history: not asked for again meanwhile.
  const pending = new Map<string, { tag: string; at: number; historyLength: number }>()
  let running: Promise<AppScheduleStatus[]> | undefined
  let loop: Promise<void> | undefined
  let stopper = new AbortController()

  async function evaluate(snap: AppSnapshot, globalPause: boolean, now: Date): Promise<AppScheduleStatus> {
    const decision = decide({ policy: snap.policy, globalPause, runningVersion: snap.runningVersion, releases: snap.releases, history: snap.history, now, ...(deps.timeZone ? { timeZone: deps.timeZone } : {}) })
    const status: AppScheduleStatus = { app: snap.app, evaluatedAt: now.toISOString(), decision }
    const url = snap.url ? { url: snap.url } : {}

    // Announce each release once, whatever the policy does with it (not when updates are off).
    const latest = decision.release
    if (latest && snap.policy.mode !== 'off') {
      const key = `${snap.app}@${latest.version}`
      if (!(await announced.has(key))) {
        await announced.add(key)
        deps.notify({ event: 'update-available', app: snap.app, version: { from: snap.runningVersion, to: latest.version }, ...url })
      }
    }

    const p = pending.get(snap.app)
    if (p && (snap.history.length > p.historyLength || now.getTime() - p.at > PENDING_FOR_MS)) pending.delete(snap.app)

    if (decision.action === 'pause') {
      await deps.pauseApp(snap.app, decision.reason)
      log.warn({ app: snap.app, failures: decision.failures }, 'automatic updates paused by the circuit breaker')
      deps.notify({ event: 'auto-paused', app: snap.app, version: { from: snap.runningVersion, ...(latest ? { to: latest.version } : {}) }, detail: decision.reason.text, ...url })
      status.acted = { paused: true }
    } else if (decision.action === 'install' && !snap.busy && !pending.has(snap.app)) {
      const tag = decision.release.tag
      try {
        const { updateId } = await deps.requestUpdate(snap.app, tag, { trigger: 'auto' })
        pending.set(snap.app, { tag, at: now.getTime(), historyLength: snap.history.length })
        log.info({ app: snap.app, tag, updateId }, 'automatic update requested')
        status.acted = { requested: { tag, updateId } }
      } catch (err) {
        // Not a failed update (nothing started): the next tick asks again.
        log.warn({ err, app: snap.app, tag }, 'cannot request an automatic update')
        status.acted = { error: err instanceof Error ? err.message : String(err) }
      }
    }
    last.set(snap.app, status)
    return status
  }

  async function tickOnce(): Promise<AppScheduleStatus[]> {
    const now = deps.clock.now()
    const [apps, globalPause] = await Promise.all([deps.apps(), deps.globalPause()])
    const out: AppScheduleStatus[] = []
    for (const snap of apps) {
      try {
        out.push(await evaluate(snap, globalPause, now))
      } catch (err) {
        log.error({ err, app: snap.app }, 'automatic update check failed')
      }
    }
    for (const app of last.keys()) if (!apps.some((a) => a.app === app)) last.delete(app)
    return out
  }

  /** The next minute boundary or the earliest window start, whichever comes first. */
  function nextWake(now: Date): number {
    let wake = (Math.floor(now.getTime() / MINUTE) + 1) * MINUTE
    for (const s of last.values()) {
      const w = s.decision.nextWindowAt ? Date.parse(s.decision.nextWindowAt) : NaN
      if (w > now.getTime() && w < wake) wake = w
    }
    return wake
  }

  const scheduler: Scheduler = {
    tick() {
      // One evaluation at a time: a slow tick is not overlapped by the next.
      running ??= tickOnce().finally(() => (running = undefined))
      return running
    },
    start() {
      if (loop) return
      stopper = new AbortController()
      const signal = stopper.signal
      loop = (async () => {
        while (!signal.aborted) {
          try {
            await scheduler.tick()
          } catch (err) {
            log.error({ err }, 'automatic update tick failed')
          }
          if (signal.aborted) break
          const now = deps.clock.now()
          await deps.clock.sleep(Math.max(0, nextWake(now) - now.getTime()), signal)
        }
      })()
    },
    async stop() {
      stopper.abort()
      await loop
      await running
      loop = undefined
    },
    status: () => [...last.values()],
  }
  return scheduler
}
