import { createHmac, timingSafeEqual } from 'node:crypto'
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http'
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { pino } from 'pino'
import { afterEach, describe, expect, test } from 'vitest'
import { createEvent, type UpkeepEvent } from '../../../server/services/auto-update/events'
import { createNotifier, endpointId, fileOutbox, memoryOutbox, type Notifier, type NotifierDeps, parseRetryAfter } from '../../../server/services/auto-update/notify'
import { renderRequest, verifyEndpoint, type WebhookEndpoint } from '../../../server/services/auto-update/presets'
import { freePort } from '../../support/run'

// Real receivers on real ports; only the retry delays are shortened.

interface Received {
  url: string
  headers: IncomingHttpHeaders
  body: string
  at: number
}

type Answer = { status: number; body?: string; headers?: Record<string, string>; delayMs?: number }

interface Receiver {
  url: string
  port: number
  received: Received[]
  until(count: number): Promise<void>
  close(): Promise<void>
}

const closers: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c()
})

async function receiver(answer: (r: Received, n: number) => Answer = () => ({ status: 200, body: 'ok' }), port = 0): Promise<Receiver> {
  const received: Received[] = []
  let waiters: { count: number; resolve: () => void }[] = []
  const server: Server = createServer((req, res) => {
    let body = ''
    req.on('data', (d) => (body += d))
    req.on('end', () => {
      const r: Received = { url: req.url ?? '', headers: req.headers, body, at: Date.now() }
      received.push(r)
      const a = answer(r, received.length)
      waiters = waiters.filter((w) => (received.length >= w.count ? (w.resolve(), false) : true))
      const send = () => {
        if (res.destroyed) return
        res.writeHead(a.status, { 'content-type': 'text/plain', ...a.headers })
        res.end(a.body ?? '')
      }
      if (a.delayMs) setTimeout(send, a.delayMs).unref()
      else send()
    })
  })
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r))
  const actual = (server.address() as AddressInfo).port
  const close = () =>
    new Promise<void>((r) => {
      server.closeAllConnections()
      server.close(() => r())
    })
  closers.push(close)
  return {
    url: `http://127.0.0.1:${actual}/hook`,
    port: actual,
    received,
    until: (count) => (received.length >= count ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ count, resolve }))),
    close,
  }
}

function notifier(endpoints: Record<string, WebhookEndpoint[]>, extra: Partial<NotifierDeps> = {}): Notifier {
  const n = createNotifier({ endpoints: (app) => endpoints[app] ?? [], log: pino({ level: 'silent' }), retryDelaysMs: [50, 100, 200, 400, 800], attemptTimeoutMs: 2000, ...extra })
  closers.push(() => n.stop())
  return n
}

/** What a receiver does (README "Verifying a signature"), written out independently of Upkeep's code. */
function verify(secret: string, r: Received): boolean {
  const ts = String(r.headers['x-upkeep-timestamp'])
  const expected = Buffer.from('sha256=' + createHmac('sha256', secret).update(`${ts}.${r.body}`).digest('hex'))
  const given = Buffer.from(String(r.headers['x-upkeep-signature']))
  return given.length === expected.length && timingSafeEqual(given, expected) && Math.abs(Date.now() / 1000 - Number(ts)) < 300
}

const SECRET = 'receiver-shared-secret'

describe('webhooks', () => {
  test('the events of an update arrive in order, each validly signed, with the documented body', async () => {
    const r = await receiver()
    const n = notifier({ widget: [{ url: r.url, preset: 'json', secret: SECRET }] })
    await n.start()
    const update = { app: 'widget', updateId: '20261203T020000Z-a1b2c3d4', version: { from: '1.2.0', to: '1.2.1' }, trigger: 'auto' as const, url: 'http://upkeep.test/apps/widget' }
    n.emit({ event: 'update-available', app: 'widget', version: update.version })
    n.emit({ event: 'update-started', ...update })
    n.emit({ event: 'update-completed', ...update })
    await r.until(3)
    await n.idle()
    expect(r.received.map((x) => x.headers['x-upkeep-event'])).toEqual(['update-available', 'update-started', 'update-completed'])
    for (const x of r.received) {
      expect(verify(SECRET, x)).toBe(true)
      expect(verify('another secret', x)).toBe(false)
      expect(x.headers['content-type']).toBe('application/json')
    }
    const completed = JSON.parse(r.received[2]!.body) as UpkeepEvent
    expect(completed).toEqual({
      schema: 1,
      id: r.received[2]!.headers['x-upkeep-delivery'],
      event: 'update-completed',
      app: 'widget',
      updateId: '20261203T020000Z-a1b2c3d4',
      version: { from: '1.2.0', to: '1.2.1' },
      status: 'complete',
      trigger: 'auto',
      at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      url: 'http://upkeep.test/apps/widget',
      message: 'widget updated 1.2.0 → 1.2.1',
    })
    // A body changed in transit no longer verifies.
    expect(verify(SECRET, { ...r.received[2]!, body: r.received[2]!.body.replace('1.2.1', '6.6.6') })).toBe(false)
  })

  test('a receiver answering 500 twice gets the event on the third try, and the next event only after it', async () => {
    const r = await receiver((_req, n) => (n <= 2 ? { status: 500, body: 'oops' } : { status: 200 }))
    const n = notifier({ widget: [{ url: r.url, preset: 'json' }] })
    await n.start()
    const failed = n.emit({ event: 'update-failed', app: 'widget', version: { from: '1.2.0', to: '1.2.1' }, error: { code: 'BUILD_FAILED', message: 'npm ci exited 1' } })
    n.emit({ event: 'update-available', app: 'widget', version: { from: '1.2.0', to: '1.2.2' } })
    await r.until(4)
    await n.idle()
    expect(r.received.map((x) => `${x.headers['x-upkeep-event']} ${x.headers['x-upkeep-delivery'] === failed.id ? 'same' : 'other'}`)).toEqual([
      'update-failed same',
      'update-failed same',
      'update-failed same',
      'update-available other',
    ])
    expect(JSON.parse(r.received[2]!.body)).toMatchObject({ status: 'failed', error: { code: 'BUILD_FAILED', message: 'npm ci exited 1' } })
    expect(n.status()).toEqual([expect.objectContaining({ queued: 0, lastError: 'HTTP 500', lastDeliveredAt: expect.any(String) })])
  })

  test('an unreachable receiver delays nothing and is retried until it is there', async () => {
    const port = await freePort()
    const url = `http://127.0.0.1:${port}/hook`
    const n = notifier({ widget: [{ url, preset: 'json' }] }, { retryDelaysMs: [100, 300, 1000, 3000, 10_000] })
    await n.start()
    const order: string[] = []
    n.emit({ event: 'update-started', app: 'widget', version: { to: '1.2.1' } })
    order.push('emit returned')
    // The first attempt fails: nothing listens.
    await until(() => n.status()[0]?.lastError === 'connection refused')
    order.push('first attempt refused')
    const r = await receiver(() => {
      order.push('received')
      return { status: 204 }
    }, port)
    await r.until(1)
    await n.idle()
    expect(order).toEqual(['emit returned', 'first attempt refused', 'received'])
    expect(n.status()).toEqual([expect.objectContaining({ queued: 0, lastDeliveredAt: expect.any(String) })])
  })

  test('a slow receiver (answers after 5 s) holds up neither the caller nor other receivers, and sees the retry', async () => {
    const order: string[] = []
    const slow = await receiver((_r, n) => {
      order.push(`slow receiver: request ${n}`)
      return n === 1 ? { status: 200, delayMs: 5000 } : { status: 200 }
    })
    const fast = await receiver(() => {
      order.push('fast receiver: request')
      return { status: 200 }
    })
    const n = notifier({ widget: [{ url: slow.url, preset: 'json' }, { url: fast.url, preset: 'json' }] }, { attemptTimeoutMs: 1000 })
    await n.start()
    const e = n.emit({ event: 'update-completed', app: 'widget', version: { from: '1.2.0', to: '1.2.1' } })
    order.push('emit returned')
    await fast.until(1)
    await slow.until(2)
    await n.idle()
    expect(order[0]).toBe('emit returned')
    // The fast receiver had its copy before the slow one's first attempt timed out and was retried.
    expect(order.indexOf('fast receiver: request')).toBeLessThan(order.indexOf('slow receiver: request 2'))
    expect(slow.received.map((x) => x.headers['x-upkeep-delivery'])).toEqual([e.id, e.id])
    const slowStatus = n.status().find((s) => s.endpointId === endpointId('widget', { url: slow.url, preset: 'json' }))
    expect(slowStatus).toMatchObject({ queued: 0, lastError: 'no answer within 1 s', lastDeliveredAt: expect.any(String) })
  })

  test('a receiver that keeps answering 500 never fails anything: the event is dropped after the last retry', async () => {
    const r = await receiver(() => ({ status: 500 }))
    const n = notifier({ widget: [{ url: r.url, preset: 'json' }] })
    await n.start()
    expect(() => n.emit({ event: 'update-completed', app: 'widget', version: { to: '1.2.1' } })).not.toThrow()
    await r.until(6)
    await n.idle()
    expect(r.received).toHaveLength(6) // the first try and 5 retries
    expect(n.status()).toEqual([expect.objectContaining({ queued: 0, lastError: 'HTTP 500' })])
    expect(n.status()[0]!.lastDeliveredAt).toBeUndefined()
  })

  test('a 404 is not retried (a wrong URL stays wrong); the next event is still sent', async () => {
    const r = await receiver((_x, n) => (n === 1 ? { status: 404 } : { status: 200 }))
    const n = notifier({ widget: [{ url: r.url, preset: 'json' }] })
    await n.start()
    n.emit({ event: 'update-started', app: 'widget', version: { to: '1.2.1' } })
    n.emit({ event: 'update-completed', app: 'widget', version: { to: '1.2.1' } })
    await r.until(2)
    await n.idle()
    expect(r.received.map((x) => x.headers['x-upkeep-event'])).toEqual(['update-started', 'update-completed'])
  })

  test('Retry-After is honoured', async () => {
    const r = await receiver((_x, n) => (n === 1 ? { status: 429, headers: { 'retry-after': '1' } } : { status: 200 }))
    const n = notifier({ widget: [{ url: r.url, preset: 'json' }] })
    await n.start()
    n.emit({ event: 'update-started', app: 'widget', version: { to: '1.2.1' } })
    await r.until(2)
    // The retry came no sooner than the receiver asked (50 ms would be the first backoff).
    expect(r.received[1]!.at - r.received[0]!.at).toBeGreaterThanOrEqual(1000)
    expect(parseRetryAfter('120', new Date('2026-12-02T00:00:00Z'))).toBe(120_000)
    expect(parseRetryAfter('Wed, 02 Dec 2026 00:01:00 GMT', new Date('2026-12-02T00:00:00Z'))).toBe(60_000)
    expect(parseRetryAfter('soon', new Date())).toBeUndefined()
  })

  test('only the events an endpoint asks for are sent to it', async () => {
    const r = await receiver()
    const n = notifier({ widget: [{ url: r.url, preset: 'json', events: ['update-failed', 'update-rolled-back'] }], other: [] })
    await n.start()
    n.emit({ event: 'update-started', app: 'widget', version: { to: '1.2.1' } })
    n.emit({ event: 'update-rolled-back', app: 'widget', version: { from: '1.2.0', to: '1.2.1' }, detail: 'during soak' })
    n.emit({ event: 'update-failed', app: 'other', version: { to: '2.0.0' } })
    await r.until(1)
    await n.idle()
    expect(r.received.map((x) => x.headers['x-upkeep-event'])).toEqual(['update-rolled-back'])
    expect(JSON.parse(r.received[0]!.body)).toMatchObject({ detail: 'during soak', message: 'widget: 1.2.1 was rolled back to 1.2.0 (during soak)' })
  })

  test('the outbox survives a restart of the server: an undelivered update-completed is sent by the next process', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'upkeep-outbox-'))
    closers.push(() => rm(dir, { recursive: true, force: true }))
    const file = path.join(dir, 'notify-outbox.json')
    const port = await freePort()
    const endpoints = { upkeep: [{ url: `http://127.0.0.1:${port}/hook`, preset: 'json' as const, secret: SECRET }] }

    const before = notifier(endpoints, { store: fileOutbox(file), retryDelaysMs: [60_000] })
    await before.start()
    const e = before.emit({ event: 'update-completed', app: 'upkeep', version: { from: '1.4.0', to: '1.5.0' } })
    await until(() => before.status()[0]?.lastError === 'connection refused')
    await before.stop()
    const saved = JSON.parse(await readFile(file, 'utf8')) as { event: UpkeepEvent; attempts: number }[]
    expect(saved).toEqual([expect.objectContaining({ attempts: 1, event: expect.objectContaining({ id: e.id, event: 'update-completed' }) })])
    expect(JSON.stringify(saved)).not.toContain(SECRET)
    expect((await stat(file)).mode & 0o777).toBe(0o600)

    // The new process: the receiver is up now, and the retry time has not come yet.
    const r = await receiver(() => ({ status: 200 }), port)
    const after = notifier(endpoints, { store: fileOutbox(file), retryDelaysMs: [50] })
    // The saved retry time is a minute away: bring it forward, as time passing would.
    const items = await fileOutbox(file).load()
    await fileOutbox(file).save(items.map((i) => ({ ...i, nextAttemptAt: new Date().toISOString() })))
    await after.start()
    await r.until(1)
    await after.idle()
    expect(r.received[0]!.headers['x-upkeep-delivery']).toBe(e.id)
    expect(verify(SECRET, r.received[0]!)).toBe(true)
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual([])
  })

  test('events emitted before start wait for it, after what the outbox already held', async () => {
    const r = await receiver()
    const ep: WebhookEndpoint = { url: r.url, preset: 'json' }
    const held = createEvent({ event: 'update-started', app: 'widget', version: { to: '1.2.1' } }, new Date())
    const n = notifier({ widget: [ep] }, { store: memoryOutbox([{ endpointId: endpointId('widget', ep), app: 'widget', event: held, attempts: 0 }]) })
    n.emit({ event: 'update-completed', app: 'widget', version: { to: '1.2.1' } })
    expect(r.received).toHaveLength(0)
    await n.start()
    await r.until(2)
    expect(r.received.map((x) => x.headers['x-upkeep-event'])).toEqual(['update-started', 'update-completed'])
  })

  test('"send test" returns what the receiver answered', async () => {
    const ok = await receiver(() => ({ status: 200, body: 'ntfy says hi' }))
    const broken = await receiver(() => ({ status: 401, body: 'bad token' }))
    const n = notifier({})
    expect(await n.sendTest('widget', { url: ok.url, preset: 'ntfy' })).toMatchObject({ ok: true, status: 200, body: 'ntfy says hi', durationMs: expect.any(Number) })
    expect(ok.received[0]!.headers).toMatchObject({ 'x-upkeep-event': 'test', title: 'Upkeep test notification' })
    expect(await n.sendTest('widget', { url: broken.url, preset: 'json' })).toMatchObject({ ok: false, status: 401, body: 'bad token', error: 'HTTP 401' })
    const port = await freePort()
    expect(await n.sendTest('widget', { url: `http://127.0.0.1:${port}/`, preset: 'json' })).toMatchObject({ ok: false, error: 'connection refused' })
  })

  test('each event also goes to the journal emitter', async () => {
    const journal: string[] = []
    const n = notifier({}, { journal: { emit: (e) => void journal.push(`${e.event} ${e.app}`) } })
    n.emit({ event: 'update-failed', app: 'widget', version: { to: '1.2.1' } })
    expect(journal).toEqual(['update-failed widget'])
  })
})

describe('presets', () => {
  const event = createEvent(
    { event: 'update-rolled-back', app: 'widget', updateId: 'u1', version: { from: '1.2.0', to: '1.2.1' }, trigger: 'auto', error: { code: 'HEALTH_CHECK_FAILED', message: 'exited 1' }, detail: 'during soak', url: 'https://upkeep.example/apps/widget' },
    new Date('2026-12-03T02:10:00Z'),
    '6f1c7a52-2d7e-4a53-9a43-0c1f9f3c1e11',
  )
  const message = 'widget: 1.2.1 was rolled back to 1.2.0 (during soak): HEALTH_CHECK_FAILED exited 1'

  test('json: the event itself, signed when there is a secret', () => {
    const req = renderRequest({ url: 'https://hooks.example/upkeep', preset: 'json', secret: 's3cret' }, event, 1796263800)
    expect(req).toMatchObject({ url: 'https://hooks.example/upkeep', method: 'POST' })
    expect(JSON.parse(req.body)).toEqual(event)
    expect(req.headers).toEqual({
      'Content-Type': 'application/json',
      'User-Agent': 'Upkeep',
      'X-Upkeep-Event': 'update-rolled-back',
      'X-Upkeep-Delivery': '6f1c7a52-2d7e-4a53-9a43-0c1f9f3c1e11',
      'X-Upkeep-Timestamp': '1796263800',
      'X-Upkeep-Signature': 'sha256=' + createHmac('sha256', 's3cret').update(`1796263800.${req.body}`).digest('hex'),
    })
    expect(renderRequest({ url: 'https://hooks.example/upkeep', preset: 'json' }, event, 1796263800).headers).not.toHaveProperty('X-Upkeep-Signature')
  })

  test('ntfy: a text body with Title, Priority, Tags and Click headers', () => {
    const req = renderRequest({ url: 'https://ntfy.example/upkeep-alerts', preset: 'ntfy', token: 'tk_abc' }, event, 0)
    expect(req.url).toBe('https://ntfy.example/upkeep-alerts')
    expect(req.body).toBe(message)
    expect(req.headers).toMatchObject({ 'Content-Type': 'text/plain; charset=utf-8', Title: 'widget: 1.2.1 rolled back', Priority: '4', Tags: 'rewind', Click: 'https://upkeep.example/apps/widget', Authorization: 'Bearer tk_abc' })
    const plain = renderRequest({ url: 'https://ntfy.example/t', preset: 'ntfy' }, createEvent({ event: 'update-completed', app: 'wïdget', version: { from: '1', to: '2' } }, new Date()), 0)
    expect(plain.headers).toMatchObject({ Priority: '3', Tags: 'white_check_mark', Title: `=?UTF-8?B?${Buffer.from('wïdget updated to 2').toString('base64')}?=` })
    expect(plain.headers).not.toHaveProperty('Authorization')
  })

  test('gotify: POST /message with the application token', () => {
    const req = renderRequest({ url: 'https://gotify.example/', preset: 'gotify', token: 'AbC.123' }, event, 0)
    expect(req.url).toBe('https://gotify.example/message')
    expect(req.headers).toMatchObject({ 'Content-Type': 'application/json', 'X-Gotify-Key': 'AbC.123' })
    expect(JSON.parse(req.body)).toEqual({ title: 'widget: 1.2.1 rolled back', message, priority: 8, extras: { 'client::notification': { click: { url: 'https://upkeep.example/apps/widget' } } } })
    expect(renderRequest({ url: 'https://gotify.example/message', preset: 'gotify', token: 't' }, event, 0).url).toBe('https://gotify.example/message')
  })

  test('discord: {content}, never pinging anyone', () => {
    const req = renderRequest({ url: 'https://discord.example/api/webhooks/1/x', preset: 'discord' }, event, 0)
    expect(JSON.parse(req.body)).toEqual({ username: 'Upkeep', content: `**widget: 1.2.1 rolled back**\n${message}\nhttps://upkeep.example/apps/widget`, allowed_mentions: { parse: [] } })
    const long = createEvent({ event: 'update-failed', app: 'widget', version: { to: '2' }, error: { code: 'BUILD_FAILED', message: 'x'.repeat(5000) } }, new Date())
    expect((JSON.parse(renderRequest({ url: 'https://d.example/', preset: 'discord' }, long, 0).body) as { content: string }).content).toHaveLength(2000)
  })

  test('slack-compatible: {text} with Slack escaping and a link', () => {
    const e = createEvent({ event: 'update-failed', app: 'a<b>&c', version: { to: '2.0.0' }, url: 'https://upkeep.example/apps/x' }, new Date())
    const req = renderRequest({ url: 'https://chat.example/hooks/abc', preset: 'slack' }, e, 0)
    expect(JSON.parse(req.body)).toEqual({ text: '*a&lt;b&gt;&amp;c: update to 2.0.0 failed*\na&lt;b&gt;&amp;c: update ? → 2.0.0 failed\n<https://upkeep.example/apps/x|Open in Upkeep>' })
  })

  test('a preset delivered for real: ntfy headers reach the receiver intact', async () => {
    const r = await receiver()
    const n = notifier({ widget: [{ url: r.url, preset: 'ntfy' }] })
    await n.start()
    n.emit({ event: 'update-completed', app: 'widget', version: { from: '1.2.0', to: '1.2.1' } })
    await r.until(1)
    expect(r.received[0]).toMatchObject({ body: 'widget updated 1.2.0 → 1.2.1', headers: expect.objectContaining({ title: 'widget updated to 1.2.1', priority: '3', tags: 'white_check_mark' }) })
  })

  test.each([
    [{ url: 'ftp://x.example/', preset: 'json' }, /https:\/\/ or http:\/\//],
    [{ url: 'not a url', preset: 'json' }, /is not a URL/],
    [{ url: 'https://x.example/', preset: 'teams' }, /preset must be one of json, ntfy, gotify, discord, slack/],
    [{ url: 'https://x.example/', preset: 'json', events: ['update-exploded'] }, /events must be a list of/],
    [{ url: 'https://x.example/', preset: 'gotify' }, /needs the application token/],
    [{ url: 'https://x.example/', preset: 'json', secret: '' }, /secret must be a non-empty string/],
    [{ url: 'https://x.example/', headers: {} }, /unknown webhook field "headers"/],
  ])('endpoint %j is refused', (input, message) => {
    expect(() => verifyEndpoint(input)).toThrow(message)
  })

  test('a valid endpoint is returned clean', () => {
    expect(verifyEndpoint({ url: 'https://ntfy.example/topic', preset: 'ntfy', events: ['update-failed'], token: 't' })).toEqual({ url: 'https://ntfy.example/topic', preset: 'ntfy', events: ['update-failed'], token: 't' })
    expect(verifyEndpoint({ url: 'https://x.example/h' })).toEqual({ url: 'https://x.example/h', preset: 'json' })
  })
})

async function until(check: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out waiting for a condition')
    await new Promise((r) => setTimeout(r, 10))
  }
}
