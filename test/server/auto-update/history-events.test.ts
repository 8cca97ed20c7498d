import { createServer } from 'node:http'
import { mkdtemp, rm } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { pino } from 'pino'
import { afterEach, describe, expect, test } from 'vitest'
import type { EventInput, UpkeepEvent } from '../../../server/services/auto-update/events'
import { createHistoryWatcher, eventForAttempt, eventForStart, fileCursor, type HistoryRecord, memoryCursor } from '../../../server/services/auto-update/history-events'
import { createNotifier } from '../../../server/services/auto-update/notify'
import { fileHistory } from '../../../updater/shared/history'

const cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

function entry(id: string, to: string, status: HistoryRecord['status'], finishedAt: string, extra: Partial<HistoryRecord> = {}): HistoryRecord {
  return { id, kind: 'update', trigger: 'auto', from: { version: '1.2.0' }, to: { version: to, tag: `v${to}` }, status, startedAt: finishedAt, finishedAt, durationMs: 1000, steps: [], ...extra }
}

describe('history events', () => {
  test('each outcome becomes its event; a failure during soak says so', () => {
    expect(eventForAttempt('widget', entry('u1', '1.2.1', 'complete', '2026-12-03T02:01:00Z'), 'http://u/apps/widget')).toEqual({
      id: 'widget:u1:complete',
      event: 'update-completed',
      app: 'widget',
      updateId: 'u1',
      version: { from: '1.2.0', to: '1.2.1' },
      trigger: 'auto',
      url: 'http://u/apps/widget',
    })
    const soak = entry('u2', '1.2.1', 'rolled_back', '2026-12-03T02:05:00Z', { trigger: 'request', error: { code: 'HEALTH_CHECK_FAILED', message: 'the service crashed', step: 'soak' } })
    expect(eventForAttempt('widget', soak)).toMatchObject({ event: 'update-rolled-back', trigger: 'manual', detail: 'during soak', error: { code: 'HEALTH_CHECK_FAILED', message: 'the service crashed' } })
    expect(eventForAttempt('widget', entry('u3', '1.2.1', 'rolled_back', 'x', { error: { code: 'HEALTH_CHECK_FAILED', message: 'm', step: 'health' } }))).not.toHaveProperty('detail')
    expect(eventForAttempt('widget', entry('u4', '1.2.1', 'failed', 'x'))).toMatchObject({ event: 'update-failed' })
    expect(eventForStart('widget', { updateId: 'u5', from: { version: '1.2.0' }, to: { version: '1.2.1' }, trigger: 'request' })).toEqual({
      id: 'widget:u5:started',
      event: 'update-started',
      app: 'widget',
      updateId: 'u5',
      version: { from: '1.2.0', to: '1.2.1' },
      trigger: 'manual',
    })
  })

  test('the first poll only sets the cursor; later ones announce what ended since, once', async () => {
    const history: HistoryRecord[] = [entry('old', '1.1.0', 'complete', '2026-11-01T00:00:00Z')]
    const events: EventInput[] = []
    const w = createHistoryWatcher({ app: 'widget', read: async () => history, cursor: memoryCursor(), emit: (e) => void events.push(e) })
    expect(await w.poll()).toBe(0)
    history.push(entry('u1', '1.2.1', 'rolled_back', '2026-12-03T02:01:00Z'), entry('u2', '1.2.2', 'complete', '2026-12-04T02:01:00Z'))
    expect(await w.poll()).toBe(2)
    // Recovery records the same attempt again: not announced twice.
    history.push(entry('u2', '1.2.2', 'complete', '2026-12-04T02:01:00Z', { recovered: true }))
    expect(await w.poll()).toBe(0)
    expect(events.map((e) => `${e.event} ${e.version?.to}`)).toEqual(['update-rolled-back 1.2.1', 'update-completed 1.2.2'])
  })

  test('an update that ended while the server was down is announced by the next server, to a real receiver', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'upkeep-history-events-'))
    cleanups.push(() => rm(dir, { recursive: true, force: true }))
    const history = fileHistory(path.join(dir, 'update-history.jsonl'))
    const cursorFile = path.join(dir, 'notify-history-cursor.json')

    const received: UpkeepEvent[] = []
    const server = createServer((req, res) => {
      let body = ''
      req.on('data', (d) => (body += d))
      req.on('end', () => {
        received.push(JSON.parse(body) as UpkeepEvent)
        res.end()
      })
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    cleanups.push(() => new Promise<void>((r) => server.close(() => r())))
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`

    const serverProcess = async () => {
      const notifier = createNotifier({ endpoints: () => [{ url, preset: 'json' }], log: pino({ level: 'silent' }), retryDelaysMs: [50] })
      await notifier.start()
      const watcher = createHistoryWatcher({ app: 'upkeep', read: () => history.read() as Promise<HistoryRecord[]>, cursor: fileCursor(cursorFile), emit: (e) => void notifier.emit(e) })
      return { notifier, watcher }
    }

    // The old server: knows the history, announces the start of its own update, then is restarted.
    const old = await serverProcess()
    await old.watcher.poll()
    old.notifier.emit(eventForStart('upkeep', { updateId: 'u9', from: { version: '1.4.0' }, to: { version: '1.5.0' }, trigger: 'request' }))
    await old.notifier.idle()
    await old.notifier.stop()

    // Meanwhile the updater finishes and records it.
    await history.append({ ...entry('u9', '1.5.0', 'complete', new Date().toISOString()), trigger: 'request' as const, from: { version: '1.4.0' } })

    // The new server announces it.
    const next = await serverProcess()
    expect(await next.watcher.poll()).toBe(1)
    await next.notifier.idle()
    await next.notifier.stop()
    expect(received.map((e) => `${e.event} ${e.updateId} ${e.version.from}→${e.version.to}`)).toEqual(['update-started u9 1.4.0→1.5.0', 'update-completed u9 1.4.0→1.5.0'])
    expect(received[1]!.id).toBe('upkeep:u9:complete')
  })
})
