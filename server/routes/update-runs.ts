import { Hono } from 'hono'
import { streamSSE } from 'hono/streaming'
import type { Context } from 'hono'
import { UpdateError } from '../../updater/shared/errors'
import { readHistory } from '../../updater/shared/history'
import type { Logger } from '../../updater/shared/log'
import { UPKEEP_APP } from '../../updater/shared/paths'
import { errorHandler } from '../errors'
import type { AppsService } from '../services/apps'
import { requestedTag } from '../services/apply-version'
import { createStatusFeeds, type StatusFeeds } from '../services/status-feed'
import { createTurns } from '../services/turns'
import type { UpdateLauncher } from '../services/update-launcher'
import { createUpdateRequester } from '../services/update-requests'

export interface UpdateRunDeps {
  apps: Pick<AppsService, 'get'>
  log: Logger
  /** Starts the updater after a request is written (process mode); absent: something else does (systemd). */
  updateLauncher?: UpdateLauncher
  /** Aborted when the server drains: open event streams end. */
  shutdown?: AbortSignal
  /** The status files' readers, one per file, shared by every event stream (default: made here). */
  statusFeeds?: StatusFeeds
  /** How often a status file is looked at besides fs.watch (default: status-feed's). */
  pollMs?: number
  heartbeatMs?: number
}

function parseApplyBody(body: unknown): { tag?: string; backup: boolean } {
  if (body === undefined || body === null) return { backup: true }
  if (typeof body !== 'object' || Array.isArray(body)) throw new UpdateError('BAD_REQUEST', 'body must be a JSON object')
  const b = body as Record<string, unknown>
  const unknown = Object.keys(b).filter((k) => k !== 'version' && k !== 'backup')
  if (unknown.length) throw new UpdateError('BAD_REQUEST', `unknown field ${unknown.map((k) => `"${k.slice(0, 40)}"`).join(', ')}`, { hint: 'Send {"version": "1.2.3", "backup": true}; both are optional.' })
  if (b.backup !== undefined && typeof b.backup !== 'boolean') throw new UpdateError('BAD_REQUEST', 'backup must be true or false')
  const tag = b.version !== undefined ? requestedTag(b.version) : undefined
  return { ...(tag ? { tag } : {}), backup: b.backup !== false }
}

/** The app a request is about: `/api/apps/:app/updates/…`, or Upkeep itself under `/api/updates/…`. */
export function appOf(c: Context): string {
  return c.req.param('app') ?? UPKEEP_APP
}

/** Event-stream chunks (64 KiB each at most) written per turn of the event loop, over all streams. */
const STREAM_CHUNKS_PER_TURN = 4

/**
 * The update runs of an app, as the UI sees them: ask for one, watch it live, read past ones.
 * The server only reads the updater's files; the request is the one file it writes.
 */
export function updateRunRoutes(deps: UpdateRunDeps) {
  const heartbeatMs = deps.heartbeatMs ?? 15_000
  const statusFeeds = deps.statusFeeds ?? createStatusFeeds({ log: deps.log, ...(deps.pollMs ? { pollMs: deps.pollMs } : {}) })
  // One listener ends every stream when the server drains (not one per stream).
  deps.shutdown?.addEventListener('abort', () => statusFeeds.close(), { once: true })
  const requester = createUpdateRequester(deps)
  const turns = createTurns(STREAM_CHUNKS_PER_TURN)

  return new Hono()
    .post('/apply', async (c) => {
      const text = await c.req.text()
      let body: unknown
      try {
        body = text.trim() ? JSON.parse(text) : undefined
      } catch {
        throw new UpdateError('BAD_REQUEST', 'body is not valid JSON')
      }
      const { tag, backup } = parseApplyBody(body)
      const { updateId } = await requester.request(appOf(c), { ...(tag ? { tag } : {}), backup })
      return c.json({ updateId }, 202)
    })
    .get('/events', async (c) => {
      const { paths } = await deps.apps.get(appOf(c))
      const lastHeader = c.req.header('Last-Event-ID') ?? c.req.query('lastEventId')
      const last = lastHeader && /^\d+$/.test(lastHeader) ? Number(lastHeader) : 0
      const statusFeed = statusFeeds.feed(paths.status)
      c.header('Cache-Control', 'no-store')
      c.header('X-Accel-Buffering', 'no')
      return streamSSE(c, async (stream) => {
        if (deps.shutdown?.aborted) return
        // No listener per event or wait: the feed wakes the stream, and ends it on shutdown.
        const events = statusFeed.subscribe(last)
        stream.onAbort(() => events.close())
        let lastWrite = Date.now()
        try {
          // Tell EventSource to reconnect fast: the server itself restarts during an update.
          await stream.writeSSE({ data: '', event: 'ready', retry: 1000 })
          while (!events.closed) {
            // Each chunk waits its turn: a write that fits the socket's buffer gives the event loop
            // none, and 200 streams woken at once, or replaying a long log, would hold every request.
            for (;;) {
              await turns.next()
              const chunk = events.takeSse()
              if (!chunk) break
              await stream.write(chunk)
              lastWrite = Date.now()
            }
            if (Date.now() - lastWrite >= heartbeatMs) {
              await stream.write(': keep-alive\n\n')
              lastWrite = Date.now()
            }
            await events.wait(heartbeatMs - (Date.now() - lastWrite))
          }
        } finally {
          events.close()
        }
      })
    })
    .get('/history', async (c) => {
      const { paths } = await deps.apps.get(appOf(c))
      const raw = c.req.query('limit')
      const limit = raw && /^\d+$/.test(raw) ? Math.min(Number(raw), 500) : 50
      const entries = (await readHistory(paths.history)).reverse().slice(0, limit)
      c.header('Cache-Control', 'no-store')
      return c.json({ entries })
    })
    // The app's own error handler, so the sub-app answers the same way on its own (tests) and mounted.
    .onError(errorHandler(deps.log))
}
