import { open, stat } from 'node:fs/promises'
import path from 'node:path'
import semver from 'semver'
import type { Logger } from 'pino'
import { writeJsonAtomic, type AtomicWriteOptions } from '../../../updater/shared/atomic-write'
import { NO_FOLLOW_READ, readDataFile } from '../../../updater/shared/data-file'
import { UpdateError } from '../../../updater/shared/errors'
import { readHistory } from '../../../updater/shared/history'
import { parseStatusLines, type StatusEvent } from '../../../updater/shared/status'
import type { AppsService } from '../apps'
import { defaultAppAutoSettings, type AppAutoSettings, type AutoUpdateSettings, type AutoUpdateStore } from '../settings'
import type { UpdateRequester } from '../update-requests'
import type { SystemdCalendarCheck } from './calendar'
import type { EventInput, EventName } from './events'
import { createHistoryWatcher, eventForStart, fileCursor, type HistoryRecord } from './history-events'
import type { JournalEvents } from './journal-events'
import { createNotifier, endpointId, fileOutbox, type DeliveryResult, type EndpointStatus, type Notifier } from './notify'
import { type Attempt, type AutoUpdatePolicy, type Decision, decide, parsePolicy } from './policy'
import { verifyEndpoint, type PresetName, type WebhookEndpoint } from './presets'
import { type AnnouncedStore, type AppSnapshot, type AppScheduleStatus, createScheduler, type Scheduler, type SchedulerClock } from './scheduler'

/**
 * Unattended updates, wired to the rest of the server: the scheduler reads each app's policy
 * (settings), running version and releases (the apps service) and history (the app's state
 * dir), and asks for updates the way "Update now" does; the notifier announces what happens,
 * fed by the scheduler and by watching each app's status and history files.
 */

/** A webhook as the API shows it: where and what, never its secret or token. */
interface WebhookView {
  /** Names the endpoint in delivery reports (`deliveries`). */
  id: string
  url: string
  preset: PresetName
  events?: EventName[]
  secret: boolean
  token: boolean
}

/** `GET /api/apps/:app/policy`: the policy, and what it means right now. */
export interface AutoUpdateView {
  app: string
  policy: AutoUpdatePolicy
  webhooks: WebhookView[]
  /** The one switch for all apps. */
  pausedAll: boolean
  runningVersion: string
  evaluatedAt: string
  decision: Pick<Decision, 'action' | 'reason' | 'nextWindowAt' | 'passedOver'> & { release?: { version: string; tag: string }; notBefore?: string }
  /** How the webhooks' deliveries went lately. */
  deliveries: EndpointStatus[]
}

export interface AutoUpdateService {
  view(app: string): Promise<AutoUpdateView>
  /** `PUT /api/apps/:app/policy` `{policy?, webhooks?}`: validated whole; a webhook without `secret`/`token` keeps the stored one of the same URL. */
  save(app: string, body: unknown): Promise<AutoUpdateView>
  /** Pauses or resumes one app, or (without `app`) all of them; a resume also forgets the failures that tripped the circuit breaker. */
  setPaused(paused: boolean, app?: string): Promise<AutoUpdateSettings>
  /** Sends a `test` event to one of the app's webhooks (by URL), or to an endpoint not saved yet. */
  sendTest(app: string, body: unknown): Promise<DeliveryResult>
  /** Evaluates every app once and acts (the scheduler's tick). */
  tick(): Promise<AppScheduleStatus[]>
  /** Looks at every app's status and history files once and announces what changed. */
  watch(): Promise<void>
  /** Starts the notifier, the scheduler and the file watch. */
  start(): Promise<void>
  stop(): Promise<void>
  notifier: Notifier
}

export interface AutoUpdateDeps {
  apps: Pick<AppsService, 'get' | 'registry'>
  settings: AutoUpdateStore
  requester: UpdateRequester
  clock: SchedulerClock
  log: Logger
  /** Where the outbox, the announced releases and the history cursors are kept (the server's data dir). */
  dataDir: string
  write?: AtomicWriteOptions
  /** Under systemd: `systemd-analyze calendar` checks a window before it is saved. */
  validateCalendar?: (expr: string) => Promise<SystemdCalendarCheck>
  journal?: JournalEvents
  fetch?: typeof fetch
  /** Notifier knobs (tests make retries quick). */
  retryDelaysMs?: number[]
  attemptTimeoutMs?: number
  userAgent?: string
  /** How often the apps' status and history files are looked at. Default 1 s. */
  watchMs?: number
  /** Zone of a window calendar that names none. Default: this process's zone. */
  timeZone?: string
}

const KEEP_ANNOUNCED = 1000

/** Which releases were announced and which update starts were told: a file, so a restart does not repeat them. */
function fileAnnounced(file: string, write?: AtomicWriteOptions): AnnouncedStore {
  let keys: string[] | undefined
  const load = async () => {
    if (keys) return keys
    try {
      const v = JSON.parse((await readDataFile(file, { maxBytes: 1 << 20 })) ?? '[]') as unknown
      keys = Array.isArray(v) ? v.filter((k): k is string => typeof k === 'string') : []
    } catch {
      keys = []
    }
    return keys
  }
  return {
    has: async (k) => (await load()).includes(k),
    async add(k) {
      const list = await load()
      if (list.includes(k)) return
      list.push(k)
      keys = list.slice(-KEEP_ANNOUNCED)
      await writeJsonAtomic(file, keys, write)
    },
  }
}

const redactWebhook = (app: string, w: WebhookEndpoint): WebhookView => ({
  id: endpointId(app, w),
  url: w.url,
  preset: w.preset,
  ...(w.events ? { events: w.events } : {}),
  secret: Boolean(w.secret),
  token: Boolean(w.token),
})

const bad = (message: string, hint?: string) => new UpdateError('BAD_REQUEST', message, hint ? { hint } : {})

export function createAutoUpdate(deps: AutoUpdateDeps): AutoUpdateService {
  const log = deps.log.child({ component: 'auto-update' })
  const files = {
    outbox: path.join(deps.dataDir, 'notify-outbox.json'),
    announced: path.join(deps.dataDir, 'notify-announced.json'),
    cursor: (app: string) => path.join(deps.dataDir, 'notify-cursors', `${app}.json`),
  }
  // The notifier asks for an app's endpoints synchronously: the last settings read, kept fresh.
  let cached: AutoUpdateSettings = { paused: false, apps: {} }
  const refresh = async (): Promise<AutoUpdateSettings> => (cached = await deps.settings.readAuto())
  const appSettings = (s: AutoUpdateSettings, app: string): AppAutoSettings => s.apps[app] ?? defaultAppAutoSettings()

  const notifier = createNotifier({
    endpoints: (app) => appSettings(cached, app).webhooks,
    store: fileOutbox(files.outbox),
    log: deps.log,
    clock: deps.clock,
    ...(deps.journal ? { journal: deps.journal } : {}),
    ...(deps.fetch ? { fetch: deps.fetch } : {}),
    ...(deps.retryDelaysMs ? { retryDelaysMs: deps.retryDelaysMs } : {}),
    ...(deps.attemptTimeoutMs ? { attemptTimeoutMs: deps.attemptTimeoutMs } : {}),
    ...(deps.userAgent ? { userAgent: deps.userAgent } : {}),
  })
  const announced = fileAnnounced(files.announced, deps.write)

  /** What the policy reads of one app; `known: false` when its running version is unknown. */
  async function snapshot(app: string, s: AutoUpdateSettings): Promise<AppSnapshot & { known: boolean; checkProblem?: string }> {
    const handle = await deps.apps.get(app)
    const [status, history] = await Promise.all([handle.updates.status(), readHistory(handle.paths.history)])
    const running = status.current.version
    return {
      app,
      policy: appSettings(s, app).policy,
      runningVersion: running,
      releases: status.releases,
      history: history as Attempt[],
      busy: status.running !== null,
      known: semver.valid(running) !== null,
      ...(status.checkedAt === null ? { checkProblem: status.error ? `releases are not known: ${status.error.message}` : 'releases have not been checked yet' } : {}),
    }
  }

  async function appNames(): Promise<string[]> {
    return (await deps.apps.registry.list()).filter((e) => e.ok).map((e) => e.name)
  }

  const scheduler: Scheduler = createScheduler({
    clock: deps.clock,
    async apps() {
      const s = await refresh()
      const out: AppSnapshot[] = []
      for (const name of await appNames()) {
        try {
          const snap = await snapshot(name, s)
          // Nothing to measure a release against: the view says so, the scheduler leaves it alone.
          if (snap.known) out.push(snap)
        } catch (err) {
          log.warn({ app: name, err: (err as Error).message }, 'cannot read the app for automatic updates')
        }
      }
      return out
    },
    // Read afresh: `upkeep pause` (another process) writes the settings file.
    globalPause: async () => (await deps.settings.readAuto()).paused,
    requestUpdate: (app, tag, opts) => deps.requester.request(app, { tag, backup: true, trigger: opts.trigger }),
    async pauseApp(app) {
      await deps.settings.updateAuto((s) => ({ ...s, apps: { ...s.apps, [app]: { ...appSettings(s, app), policy: { ...appSettings(s, app).policy, paused: true } } } }))
      await refresh()
    },
    notify: (e) => void notifier.emit(e),
    log: deps.log,
    announced,
    ...(deps.timeZone ? { timeZone: deps.timeZone } : {}),
  })

  // ---- events from the apps' files -----------------------------------------------------

  const seen = new Map<string, string>()
  const watchers = new Map<string, { poll(): Promise<number> }>()
  const startKey = (app: string, updateId: string) => `started:${app}:${updateId}`

  /** `update-started`, once per update, before anything else of it is announced. */
  async function announceStart(app: string, start: { updateId: string; from: { version: string }; to: { version: string }; trigger: string }): Promise<void> {
    const key = startKey(app, start.updateId)
    if (await announced.has(key)) return
    await announced.add(key)
    notifier.emit(eventForStart(app, start))
  }

  /** The app's history watcher; each ended update it finds is announced after its start (once). */
  function watcherOf(app: string, read: () => Promise<HistoryRecord[]>, byId: Map<string, HistoryRecord>): { poll(): Promise<number> } {
    const known = watchers.get(app)
    if (known) return known
    const ended: EventInput[] = []
    const inner = createHistoryWatcher({ app, read, cursor: fileCursor(files.cursor(app)), emit: (e) => void ended.push(e) })
    const w = {
      async poll() {
        const n = await inner.poll()
        for (const e of ended.splice(0)) {
          const entry = byId.get(e.updateId ?? '')
          if (entry && entry.kind !== 'rollback') await announceStart(app, { updateId: entry.id, from: entry.from, to: entry.to, trigger: entry.trigger })
          notifier.emit(e)
        }
        return n
      },
    }
    watchers.set(app, w)
    return w
  }

  async function watchApp(app: string): Promise<void> {
    const { paths } = await deps.apps.get(app)
    const sig = (await Promise.all([paths.status, paths.history].map((f) => stat(f).then((s) => `${s.mtimeMs}:${s.size}`, () => '-')))).join('|')
    if (seen.get(app) === sig) return
    seen.set(app, sig)
    const started = await firstStatusEvent(paths.status)
    const byId = new Map<string, HistoryRecord>()
    const read = async () => {
      const entries = (await readHistory(paths.history)) as HistoryRecord[]
      for (const e of entries) byId.set(e.id, e)
      return entries
    }
    const watcher = watcherOf(app, read, byId)
    // The history first: an update that ended is announced whole (start, then end) in order.
    await watcher.poll()
    if (started?.type === 'update-started' && started.kind === 'update' && !byId.has(started.updateId)) {
      await announceStart(app, { updateId: started.updateId, from: started.from, to: started.to, trigger: started.trigger ?? 'request' })
    }
  }

  let watching: Promise<void> | undefined
  async function watchOnce(): Promise<void> {
    await refresh()
    for (const app of await appNames()) {
      try {
        await watchApp(app)
      } catch (err) {
        log.warn({ app, err: (err as Error).message }, 'cannot read the update files of an app')
      }
    }
  }

  let stopper: AbortController | undefined
  let loop: Promise<void> | undefined

  async function view(app: string): Promise<AutoUpdateView> {
    const s = await refresh()
    const snap = await snapshot(app, s)
    const now = deps.clock.now()
    const decision: Decision = snap.known
      ? decide({ policy: snap.policy, globalPause: s.paused, runningVersion: snap.runningVersion, releases: snap.releases, history: snap.history, now, ...(deps.timeZone ? { timeZone: deps.timeZone } : {}) })
      : { action: 'none', passedOver: [], reason: { code: 'version-unknown', text: `the running version of ${app} is not known: install a release once by hand, then updates can install themselves` } }
    // "Up to date" only from a release list; without one, say why there is none.
    if (decision.reason.code === 'up-to-date' && snap.checkProblem) decision.reason = { code: 'releases-unknown', text: snap.checkProblem }
    const ids = new Set(appSettings(s, app).webhooks.map((w) => endpointId(app, w)))
    return {
      app,
      policy: snap.policy,
      webhooks: appSettings(s, app).webhooks.map((w) => redactWebhook(app, w)),
      pausedAll: s.paused,
      runningVersion: snap.runningVersion,
      evaluatedAt: now.toISOString(),
      decision: {
        action: decision.action,
        reason: decision.reason,
        passedOver: decision.passedOver,
        ...(decision.nextWindowAt ? { nextWindowAt: decision.nextWindowAt } : {}),
        ...(decision.release ? { release: { version: decision.release.version, tag: decision.release.tag } } : {}),
        ...(decision.action === 'wait' && decision.notBefore ? { notBefore: decision.notBefore } : {}),
      },
      deliveries: notifier.status().filter((d) => ids.has(d.endpointId)),
    }
  }

  /** The webhooks of a save: a stored endpoint's secret and token stay unless the body replaces (or, with null, removes) them. */
  function mergeWebhooks(stored: WebhookEndpoint[], input: unknown): WebhookEndpoint[] {
    if (!Array.isArray(input)) throw bad('webhooks must be a list of endpoints', 'e.g. [{"url": "https://hooks.example.org/upkeep", "preset": "json", "secret": "…"}]')
    if (input.length > 20) throw bad('at most 20 webhooks per app')
    return input.map((raw, i) => {
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw bad(`webhooks[${i}] must be an object`)
      const o = { ...(raw as Record<string, unknown>) }
      const same = stored.find((w) => w.url === o.url || (typeof o.url === 'string' && safeUrl(o.url) === w.url))
      for (const k of ['secret', 'token'] as const) {
        if (o[k] === null || o[k] === '') delete o[k]
        else if (!(k in o) && same?.[k]) o[k] = same[k]
      }
      try {
        return verifyEndpoint(o)
      } catch (err) {
        if (err instanceof UpdateError) throw new UpdateError('BAD_REQUEST', `webhooks[${i}]: ${err.message}`, err.hint ? { hint: err.hint } : {})
        throw err
      }
    })
  }

  const service: AutoUpdateService = {
    notifier,
    view,
    async save(app, body) {
      // NOT_FOUND for an app that does not exist, before anything is stored for it.
      await deps.apps.get(app)
      if (typeof body !== 'object' || body === null || Array.isArray(body)) throw bad('the body must be a JSON object', 'send {"policy": {…}, "webhooks": […]}; both are optional')
      const b = body as Record<string, unknown>
      const unknown = Object.keys(b).filter((k) => k !== 'policy' && k !== 'webhooks')
      if (unknown.length) throw bad(`unknown field ${unknown.map((k) => JSON.stringify(k.slice(0, 40))).join(', ')}`, 'send {"policy": {…}, "webhooks": […]}; both are optional')
      const before = appSettings(await deps.settings.readAuto(), app)
      let policy = before.policy
      if (b.policy !== undefined) {
        if (typeof b.policy !== 'object' || b.policy === null || Array.isArray(b.policy)) throw bad('policy must be a JSON object')
        // resumedAt is the server's to set (on a resume), never the client's.
        const { resumedAt: _r, ...fields } = b.policy as Record<string, unknown>
        policy = parsePolicy({ ...fields, ...(before.policy.resumedAt ? { resumedAt: before.policy.resumedAt } : {}) })
        if (before.policy.paused && !policy.paused) policy.resumedAt = deps.clock.now().toISOString()
        if (policy.window && deps.validateCalendar) {
          const check = await deps.validateCalendar(policy.window.calendar)
          if (!check.ok) throw bad(`systemd-analyze does not accept the window ${JSON.stringify(policy.window.calendar)}: ${check.error}`, 'write it as systemd.time(7) describes calendar events, e.g. "*-*-* 03:00 Europe/Berlin"')
        }
      }
      const webhooks = b.webhooks !== undefined ? mergeWebhooks(before.webhooks, b.webhooks) : before.webhooks
      await deps.settings.updateAuto((s) => ({ ...s, apps: { ...s.apps, [app]: { policy, webhooks } } }))
      log.info({ app, mode: policy.mode, paused: policy.paused, webhooks: webhooks.length }, 'update policy saved')
      // Act on it now, not at the next minute.
      void scheduler.tick().catch(() => {})
      return view(app)
    },
    async setPaused(paused, app) {
      if (app) await deps.apps.get(app)
      const now = deps.clock.now().toISOString()
      const after = await deps.settings.updateAuto((s) => {
        if (!app) return { ...s, paused }
        const cur = appSettings(s, app)
        const policy: AutoUpdatePolicy = { ...cur.policy, paused, ...(paused ? {} : { resumedAt: now }) }
        return { ...s, apps: { ...s.apps, [app]: { ...cur, policy } } }
      })
      cached = after
      log.info({ app: app ?? 'all', paused }, paused ? 'automatic updates paused' : 'automatic updates resumed')
      return after
    },
    async sendTest(app, body) {
      await deps.apps.get(app)
      if (typeof body !== 'object' || body === null || Array.isArray(body)) throw bad('send {"url": "…"} of a saved webhook, or a whole endpoint to try')
      const o = body as Record<string, unknown>
      const stored = appSettings(await deps.settings.readAuto(), app).webhooks
      const saved = Object.keys(o).length === 1 && typeof o.url === 'string' ? stored.find((w) => w.url === o.url || w.url === safeUrl(o.url as string)) : undefined
      const ep = saved ?? mergeWebhooks(stored, [o])[0]!
      const result = await notifier.sendTest(app, ep)
      log.info({ app, preset: ep.preset, ok: result.ok, status: result.status, error: result.error }, 'webhook test sent')
      return result
    },
    tick: () => scheduler.tick(),
    watch() {
      watching ??= watchOnce().finally(() => (watching = undefined))
      return watching
    },
    async start() {
      stopper = new AbortController()
      const signal = stopper.signal
      await refresh()
      // The first look only sets each app's history cursor: what ended before stays unannounced.
      await service.watch()
      if (signal.aborted) return
      await notifier.start()
      if (signal.aborted) return
      scheduler.start()
      loop = (async () => {
        while (!signal.aborted) {
          await deps.clock.sleep(deps.watchMs ?? 1000, signal)
          if (signal.aborted) break
          await service.watch().catch((err: unknown) => log.warn({ err }, 'watching the update files failed'))
        }
      })()
    },
    async stop() {
      stopper?.abort()
      await loop
      await watching
      await scheduler.stop()
      await notifier.stop()
    },
  }
  return service
}

/** The first event of a status file (its `update-started`): the file grows with the build's log, only its head is read. */
async function firstStatusEvent(file: string): Promise<StatusEvent | undefined> {
  let h
  try {
    h = await open(file, NO_FOLLOW_READ)
  } catch {
    return undefined
  }
  try {
    if (!(await h.stat()).isFile()) return undefined
    const buf = Buffer.alloc(16 << 10)
    const { bytesRead } = await h.read(buf, 0, buf.length, 0)
    const text = buf.toString('utf8', 0, bytesRead)
    const nl = text.indexOf('\n')
    return nl < 0 ? undefined : parseStatusLines(text.slice(0, nl))[0]
  } finally {
    await h.close()
  }
}

function safeUrl(u: string): string | undefined {
  try {
    return new URL(u).toString()
  } catch {
    return undefined
  }
}
