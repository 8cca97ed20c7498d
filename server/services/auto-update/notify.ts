import { createHash } from 'node:crypto'
import { setTimeout as delay } from 'node:timers/promises'
import type { Logger } from 'pino'
import { writeJsonAtomic } from '../../../updater/shared/atomic-write'
import { readDataFile } from '../../../updater/shared/data-file'
import { createEvent, type EventInput, type UpkeepEvent } from './events'
import { renderRequest, type WebhookEndpoint } from './presets'

/**
 * Webhook delivery that never holds anything up: `emit` queues and returns at once, each
 * endpoint has its own queue worked in order (the events of one update arrive in order), a
 * failed delivery is retried with backoff (honouring Retry-After), and nothing is ever thrown
 * to the caller. The queue is written to an outbox file after every change, so an event queued
 * just before the server restarts (Upkeep updating itself) is delivered after the restart; a
 * receiver may therefore see a delivery twice and should drop repeats by `id`.
 */

/** Waits after the first try: 5 retries, then the event is dropped (and logged). */
export const RETRY_DELAYS_MS = [1_000, 5_000, 30_000, 120_000, 600_000]
export const ATTEMPT_TIMEOUT_MS = 5_000
const MAX_RETRY_AFTER_MS = 3_600_000
const MAX_QUEUE_PER_ENDPOINT = 500

export interface OutboxItem {
  endpointId: string
  app: string
  event: UpkeepEvent
  /** Failed attempts so far. */
  attempts: number
  /** ISO time of the next attempt, after a failure. */
  nextAttemptAt?: string
  lastError?: string
}

/** Where undelivered events wait: a file beside the server's data, or memory in tests. */
export interface OutboxStore {
  load(): Promise<OutboxItem[]>
  save(items: OutboxItem[]): Promise<void>
}

export function memoryOutbox(initial: OutboxItem[] = []): OutboxStore & { items: OutboxItem[] } {
  const store = {
    items: [...initial],
    async load() {
      return structuredClone(store.items)
    },
    async save(items: OutboxItem[]) {
      store.items = structuredClone(items)
    },
  }
  return store
}

/** `data/notify-outbox.json` (0600: error messages may say more than the public should see). */
export function fileOutbox(file: string): OutboxStore {
  return {
    async load() {
      try {
        const parsed = JSON.parse((await readDataFile(file, { maxBytes: 16 << 20 })) ?? '[]') as unknown
        return Array.isArray(parsed) ? (parsed as OutboxItem[]).filter((i) => i && typeof i.endpointId === 'string' && i.event && typeof i.event.id === 'string') : []
      } catch {
        return []
      }
    },
    save: (items) => writeJsonAtomic(file, items, { mode: 0o600 }),
  }
}

/** A stable id for an app's endpoint: the outbox refers to endpoints by it, never stores secrets. */
export function endpointId(app: string, ep: Pick<WebhookEndpoint, 'url' | 'preset'>): string {
  return createHash('sha256').update(`${app}\0${ep.preset}\0${ep.url}`).digest('hex').slice(0, 16)
}

export interface DeliveryResult {
  ok: boolean
  /** The receiver's HTTP status, when it answered. */
  status?: number
  /** The start of the receiver's answer (at most 2,000 characters). */
  body?: string
  /** Why it failed: "HTTP 500", "no answer within 5 s", "connection refused". */
  error?: string
  durationMs: number
}

export interface EndpointStatus {
  endpointId: string
  app: string
  url: string
  queued: number
  lastDeliveredAt?: string
  lastError?: string
  lastErrorAt?: string
}

export interface NotifierDeps {
  /** The app's endpoints as configured now (read at every delivery, so edits apply at once). */
  endpoints(app: string): WebhookEndpoint[]
  fetch?: typeof fetch
  store?: OutboxStore
  log: Logger
  clock?: { now(): Date; sleep(ms: number, signal: AbortSignal): Promise<void> }
  /** Each event also goes here (the systemd journal). */
  journal?: { emit(event: UpkeepEvent): void }
  retryDelaysMs?: number[]
  attemptTimeoutMs?: number
  userAgent?: string
}

export interface Notifier {
  /** Queues the event for every endpoint of its app that wants it and returns at once. Never throws. */
  emit(input: EventInput): UpkeepEvent
  /** Sends a `test` event to `ep` once, now, and returns what the receiver answered (the "send test" button). */
  sendTest(app: string, ep: WebhookEndpoint): Promise<DeliveryResult>
  /** Loads the outbox and starts delivering; events emitted before wait until then. */
  start(): Promise<void>
  /** Stops delivering; what is undelivered stays in the outbox for the next start. */
  stop(): Promise<void>
  /** Resolves once every queue is empty (tests, an orderly shutdown). */
  idle(): Promise<void>
  status(): EndpointStatus[]
}

const realClock = {
  now: () => new Date(),
  sleep: async (ms: number, signal: AbortSignal) => {
    await delay(ms, undefined, { signal }).catch(() => {})
  },
}

export function createNotifier(deps: NotifierDeps): Notifier {
  const clock = deps.clock ?? realClock
  const doFetch = deps.fetch ?? fetch
  const store = deps.store ?? memoryOutbox()
  const delays = deps.retryDelaysMs ?? RETRY_DELAYS_MS
  const timeoutMs = deps.attemptTimeoutMs ?? ATTEMPT_TIMEOUT_MS
  const userAgent = deps.userAgent ?? 'Upkeep'
  const log = deps.log.child({ component: 'notify' })

  let items: OutboxItem[] = []
  let started = false
  let loaded = false
  let stopping = new AbortController()
  const workers = new Map<string, Promise<void>>()
  const stats = new Map<string, EndpointStatus>()
  let waiters: (() => void)[] = []

  // Writes are serialized and coalesced: the file always ends up with the latest queue.
  let saving: Promise<void> | undefined
  let dirty = false
  const persist = (): Promise<void> => {
    // Before start() has loaded the outbox, a save would overwrite what it holds.
    if (!loaded) return Promise.resolve()
    dirty = true
    saving ??= (async () => {
      while (dirty) {
        dirty = false
        try {
          await store.save(items)
        } catch (err) {
          log.warn({ err }, 'cannot save the webhook outbox')
        }
      }
    })().finally(() => {
      saving = undefined
      // A change that came in after the loop's last check.
      if (dirty) void persist()
    })
    return saving
  }

  const changed = () => {
    if (items.length === 0 && workers.size === 0) {
      for (const w of waiters) w()
      waiters = []
    }
  }

  const resolve = (item: OutboxItem): WebhookEndpoint | undefined => deps.endpoints(item.app).find((ep) => endpointId(item.app, ep) === item.endpointId)

  const statFor = (item: OutboxItem, ep?: WebhookEndpoint): EndpointStatus => {
    let s = stats.get(item.endpointId)
    if (!s) stats.set(item.endpointId, (s = { endpointId: item.endpointId, app: item.app, url: redact(ep?.url ?? ''), queued: 0 }))
    return s
  }

  async function deliver(ep: WebhookEndpoint, event: UpkeepEvent, signal?: AbortSignal): Promise<DeliveryResult & { retry: boolean; retryAfterMs?: number }> {
    const startedAt = Date.now()
    const req = renderRequest(ep, event, Math.floor(clock.now().getTime() / 1000), userAgent)
    const signals = [AbortSignal.timeout(timeoutMs), ...(signal ? [signal] : [])]
    try {
      const res = await doFetch(req.url, { method: req.method, headers: req.headers, body: req.body, signal: AbortSignal.any(signals), redirect: 'manual' })
      const body = (await res.text()).slice(0, 2000)
      const durationMs = Date.now() - startedAt
      if (res.status >= 200 && res.status < 300) return { ok: true, status: res.status, body, durationMs, retry: false }
      if (res.status >= 300 && res.status < 400) {
        return { ok: false, status: res.status, body, durationMs, retry: false, error: `HTTP ${res.status}: redirected to ${res.headers.get('location') ?? '?'}; configure the final URL` }
      }
      // Other 4xx answers will not change by asking again (a wrong URL or token).
      const retry = res.status === 408 || res.status === 425 || res.status === 429 || res.status >= 500
      const retryAfterMs = parseRetryAfter(res.headers.get('retry-after'), clock.now())
      return { ok: false, status: res.status, body, durationMs, retry, error: `HTTP ${res.status}`, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) }
    } catch (err) {
      return { ok: false, durationMs: Date.now() - startedAt, retry: true, error: describeFetchError(err, timeoutMs) }
    }
  }

  async function work(id: string): Promise<void> {
    const signal = stopping.signal
    for (;;) {
      if (signal.aborted) return
      const item = items.find((i) => i.endpointId === id)
      if (!item) return
      const ep = resolve(item)
      if (!ep) {
        log.warn({ app: item.app, event: item.event.event }, 'dropping an event for a webhook that is no longer configured')
        remove(item)
        continue
      }
      const wait = item.nextAttemptAt ? Date.parse(item.nextAttemptAt) - clock.now().getTime() : 0
      if (wait > 0) {
        await clock.sleep(wait, signal)
        continue
      }
      const r = await deliver(ep, item.event, signal)
      if (signal.aborted && !r.ok) return
      const s = statFor(item, ep)
      if (r.ok) {
        s.lastDeliveredAt = clock.now().toISOString()
        log.info({ app: item.app, event: item.event.event, id: item.event.id, url: s.url, attempts: item.attempts + 1 }, 'webhook delivered')
        remove(item)
        continue
      }
      item.attempts++
      item.lastError = r.error
      s.lastError = r.error
      s.lastErrorAt = clock.now().toISOString()
      if (!r.retry || item.attempts > delays.length) {
        log.warn({ app: item.app, event: item.event.event, id: item.event.id, url: s.url, attempts: item.attempts, error: r.error }, 'webhook not delivered; giving up')
        remove(item)
        continue
      }
      const backoff = Math.min(Math.max(delays[item.attempts - 1]!, r.retryAfterMs ?? 0), MAX_RETRY_AFTER_MS)
      item.nextAttemptAt = new Date(clock.now().getTime() + backoff).toISOString()
      log.info({ app: item.app, event: item.event.event, url: s.url, attempts: item.attempts, error: r.error, retryInMs: backoff }, 'webhook failed; will retry')
      void persist()
    }
  }

  function remove(item: OutboxItem): void {
    items = items.filter((i) => i !== item)
    void persist()
  }

  function kick(id: string): void {
    if (!started || workers.has(id) || stopping.signal.aborted) return
    const run = work(id)
      .catch((err: unknown) => log.error({ err }, 'webhook worker failed'))
      .finally(() => {
        workers.delete(id)
        // An item queued while the worker was finishing needs a worker again.
        if (items.some((i) => i.endpointId === id)) kick(id)
        changed()
      })
    workers.set(id, run)
  }

  return {
    emit(input) {
      const event = createEvent(input, clock.now())
      try {
        deps.journal?.emit(event)
        for (const ep of deps.endpoints(event.app)) {
          if (ep.events && !ep.events.includes(event.event)) continue
          const id = endpointId(event.app, ep)
          const queued = items.filter((i) => i.endpointId === id)
          if (queued.length >= MAX_QUEUE_PER_ENDPOINT) {
            log.warn({ app: event.app, url: redact(ep.url) }, 'webhook queue full; dropping its oldest event')
            items = items.filter((i) => i !== queued[0])
          }
          items.push({ endpointId: id, app: event.app, event, attempts: 0 })
          kick(id)
        }
        void persist()
      } catch (err) {
        log.error({ err, event: event.event }, 'cannot queue an event')
      }
      return event
    },

    async sendTest(app, ep) {
      const event = createEvent({ event: 'test', app }, clock.now())
      const { retry: _retry, retryAfterMs: _after, ...result } = await deliver(ep, event)
      return result
    },

    async start() {
      if (started) return
      if (!loaded) {
        items = [...(await store.load()), ...items]
        loaded = true
        void persist()
      }
      started = true
      stopping = new AbortController()
      for (const id of new Set(items.map((i) => i.endpointId))) kick(id)
      changed()
    },

    async stop() {
      stopping.abort()
      await Promise.all([...workers.values()])
      started = false
      await persist()
    },

    async idle() {
      if (items.length > 0 || workers.size > 0) await new Promise<void>((r) => waiters.push(r))
      while (saving) await saving
    },

    status() {
      const out = new Map<string, EndpointStatus>()
      for (const s of stats.values()) out.set(s.endpointId, { ...s, queued: 0 })
      for (const i of items) {
        const s = out.get(i.endpointId) ?? { endpointId: i.endpointId, app: i.app, url: redact(resolve(i)?.url ?? ''), queued: 0 }
        s.queued++
        out.set(i.endpointId, s)
      }
      return [...out.values()]
    },
  }
}

/** Seconds or an HTTP date (RFC 9110 §10.2.3) → milliseconds from now. */
export function parseRetryAfter(value: string | null, now: Date): number | undefined {
  if (!value) return undefined
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000
  const at = Date.parse(value)
  return Number.isNaN(at) ? undefined : Math.max(0, at - now.getTime())
}

function describeFetchError(err: unknown, timeoutMs: number): string {
  const e = err as Error & { cause?: { code?: string; message?: string } }
  if (e?.name === 'TimeoutError') return `no answer within ${timeoutMs / 1000} s`
  if (e?.name === 'AbortError') return 'stopped'
  const code = e?.cause?.code
  if (code === 'ECONNREFUSED') return 'connection refused'
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'host not found'
  return code ? `${code}: ${e.cause?.message ?? e.message}` : (e?.message ?? String(err))
}

/** URLs of chat webhooks carry their secret in the path: logs and the UI show only the host. */
function redact(url: string): string {
  try {
    const u = new URL(url)
    return `${u.protocol}//${u.host}/…`
  } catch {
    return ''
  }
}
