import { createServer, type IncomingHttpHeaders, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest'
import { isValidCalendar, validateWithSystemd } from '../../../server/services/auto-update/calendar'
import { signature } from '../../../server/services/auto-update/presets'
import type { AutoUpdateView } from '../../../server/services/auto-update/service'
import { writeInstalled } from '../../../updater/shared/installed'
import { adminHeaders, login } from '../../support/auth'
import { fakeClock } from '../../support/clock'
import { freePort } from '../../support/run'
import { createTestApp, type TestApp } from '../../support/test-app'

// The API of unattended updates: GET|PUT /api/apps/:app/policy, PUT /api/pause and
// POST /api/apps/:app/webhooks/test, on the real app over a temp data dir. Webhooks go to a
// real HTTP receiver on a local port.

const clock = fakeClock('2026-12-01T10:00:00.000Z')

let root: string
let t: TestApp
let cookie: string
let receiver: Server
let receiverUrl: string
const received: { headers: IncomingHttpHeaders; body: string }[] = []

async function appWith(env: Record<string, string> = {}): Promise<TestApp> {
  const app = await createTestApp({ clock, dataDir: await mkdtemp(path.join(root, 'data-')), env: { UPKEEP_APPS_DIR: path.join(root, 'apps'), UPDATE_CHECK_DISABLED: 'true', ...env } })
  await writeInstalled((await app.services.apps.get('widget')).paths.installed, { version: '1.2.0', at: clock.now().toISOString() })
  return app
}

const put = (pathname: string, body: unknown, app = t) => app.app.request(pathname, { method: 'PUT', headers: adminHeaders(cookie), body: JSON.stringify(body) })
const post = (pathname: string, body: unknown) => t.app.request(pathname, { method: 'POST', headers: adminHeaders(cookie), body: JSON.stringify(body) })
const get = (pathname: string) => t.app.request(pathname, { headers: { cookie } })

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'upkeep-auto-routes-'))
  await mkdir(path.join(root, 'apps'))
  const def = { name: 'widget', checkout: path.join(root, 'widget'), run: { units: ['widget.service'] }, health: { url: 'http://127.0.0.1:9/health' } }
  await writeFile(path.join(root, 'apps', 'widget.json'), JSON.stringify(def), { mode: 0o644 })
  receiver = createServer((req, res) => {
    let body = ''
    req.on('data', (c: Buffer) => (body += c.toString('utf8')))
    req.on('end', () => {
      received.push({ headers: req.headers, body })
      res.writeHead(202, { 'content-type': 'text/plain' }).end('got it')
    })
  })
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r))
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`
})
afterAll(async () => {
  await new Promise((r) => receiver.close(r))
  await rm(root, { recursive: true, force: true })
})
beforeEach(async () => {
  received.length = 0
  t = await appWith()
  cookie = await login(t.app)
})
afterEach(() => t.cleanup())

describe('GET|PUT /api/apps/:app/policy', () => {
  test('an app without settings: notify only, no webhooks, and what that means (no release list: not "up to date")', async () => {
    const res = await get('/api/apps/widget/policy')
    expect(res.status).toBe(200)
    expect(res.headers.get('cache-control')).toBe('no-store')
    const v = (await res.json()) as AutoUpdateView
    expect(v).toMatchObject({ app: 'widget', policy: { mode: 'notify', minReleaseAgeHours: 24, skip: [], paused: false }, webhooks: [], pausedAll: false, runningVersion: '1.2.0', decision: { action: 'none', reason: { code: 'releases-unknown' } } })
    expect(v.decision.reason.text).toMatch(/^releases are not known: .*has no remote "origin"/)
  })

  test('secrets and tokens are write-only: stored (0600), never answered, kept when a save leaves them out, removed with null', async () => {
    const saved = await put('/api/apps/widget/policy', {
      policy: { mode: 'minor', minReleaseAgeHours: 0, skip: ['v1.4.2'] },
      webhooks: [
        { url: receiverUrl, preset: 'json', secret: 'a long random string' },
        { url: 'https://ntfy.example.org/upkeep-alerts', preset: 'ntfy', events: ['update-failed'], token: 'tk_123' },
      ],
    })
    expect(saved.status).toBe(200)
    const text = await saved.text()
    expect(text).not.toContain('a long random string')
    expect(text).not.toContain('tk_123')
    const v = JSON.parse(text) as AutoUpdateView
    expect(v.policy).toMatchObject({ mode: 'minor', minReleaseAgeHours: 0, skip: ['1.4.2'] })
    expect(v.webhooks).toEqual([
      { id: expect.stringMatching(/^[0-9a-f]{16}$/), url: receiverUrl, preset: 'json', secret: true, token: false },
      { id: expect.stringMatching(/^[0-9a-f]{16}$/), url: 'https://ntfy.example.org/upkeep-alerts', preset: 'ntfy', events: ['update-failed'], secret: false, token: true },
    ])
    expect(await (await get('/api/apps/widget/policy')).text()).not.toMatch(/a long random string|tk_123/)
    const file = path.join(t.dataDir, 'settings.json')
    expect((await stat(file)).mode & 0o777).toBe(0o600)
    expect(JSON.parse(await readFile(file, 'utf8')).apps.widget.webhooks[0].secret).toBe('a long random string')
    // The UI sends the webhooks back as it shows them (without secrets): the stored ones stay.
    const again = await put('/api/apps/widget/policy', { webhooks: v.webhooks.map(({ url, preset, events }) => ({ url, preset, ...(events ? { events } : {}) })) })
    expect(((await again.json()) as AutoUpdateView).webhooks.map((w) => [w.secret, w.token])).toEqual([[true, false], [false, true]])
    expect(JSON.parse(await readFile(file, 'utf8')).apps.widget.webhooks[1].token).toBe('tk_123')
    // The settings page still answers only its own keys.
    expect(Object.keys(await (await get('/api/settings')).json())).toEqual(['updateRepo', 'channel', 'checkEnabled', 'env'])
    // null removes a secret.
    const removed = await put('/api/apps/widget/policy', { webhooks: [{ url: receiverUrl, preset: 'json', secret: null }] })
    expect(((await removed.json()) as AutoUpdateView).webhooks).toEqual([expect.objectContaining({ url: receiverUrl, secret: false })])
  })

  test.each([
    ['an unknown mode', { policy: { mode: 'sometimes' } }, 'mode must be one of off, notify, patch, minor, all'],
    ['an unknown field', { policy: { mode: 'patch', when: 'now' } }, 'unknown policy field "when"'],
    ['a window systemd would refuse', { policy: { window: { calendar: '*/15 03:00', durationMinutes: 60 } } }, 'calendar expression'],
    ['a window without a length', { policy: { window: { calendar: 'daily' } } }, 'window must be'],
    ['a webhook that is not http', { webhooks: [{ url: 'file:///etc/passwd' }] }, 'webhooks[0]: a webhook url starts with https:// or http://'],
    ['a gotify webhook without its token', { webhooks: [{ url: 'https://gotify.example.org', preset: 'gotify' }] }, 'webhooks[0]: a gotify endpoint needs the application token'],
    ['something else in the body', { policy: {}, owner: 'x' }, 'unknown field "owner"'],
  ])('refuses %s with 400, naming it, and stores nothing', async (_name, body, message) => {
    const res = await put('/api/apps/widget/policy', body)
    expect(res.status).toBe(400)
    const { error } = (await res.json()) as { error: { code: string; message: string; hint?: string } }
    expect(error.code).toBe('BAD_REQUEST')
    expect(error.message).toContain(message)
    expect(error.hint).toBeTruthy()
    await expect(stat(path.join(t.dataDir, 'settings.json'))).rejects.toThrow(/ENOENT/)
  })

  test('an app that does not exist is 404', async () => {
    expect((await get('/api/apps/nope/policy')).status).toBe(404)
    expect((await put('/api/apps/nope/policy', { policy: { mode: 'all' } })).status).toBe(404)
  })

  test('a resume records when, so earlier automatic failures no longer trip the circuit breaker', async () => {
    await put('/api/apps/widget/policy', { policy: { mode: 'patch', paused: true } })
    expect(((await (await get('/api/apps/widget/policy')).json()) as AutoUpdateView).decision.reason).toEqual({ code: 'paused', text: 'paused' })
    clock.advance(60_000)
    const v = (await (await put('/api/apps/widget/policy', { policy: { mode: 'patch', paused: false, resumedAt: '1999-01-01T00:00:00Z' } })).json()) as AutoUpdateView
    // The client cannot set resumedAt; the server sets it at the resume.
    expect(v.policy.resumedAt).toBe(clock.now().toISOString())
  })

  test('under systemd a window is also checked with systemd-analyze, which has the last word', async () => {
    // A zone this machine's ICU still knows but its tz database (which systemd reads) no longer has.
    const zone = '*-*-* 03:00 US/Pacific-New'
    expect(isValidCalendar(zone)).toBe(true)
    expect((await validateWithSystemd(zone)).ok).toBe(false)
    const withoutSystemd = await put('/api/apps/widget/policy', { policy: { window: { calendar: zone, durationMinutes: 60 } } })
    expect(withoutSystemd.status).toBe(200)

    const sd = await appWith({ UPKEEP_SERVICE_MANAGER: 'systemd' })
    try {
      const refused = await put('/api/apps/widget/policy', { policy: { window: { calendar: zone, durationMinutes: 60 } } }, sd)
      // Another server, another session: sign in there first.
      expect(refused.status).toBe(401)
      cookie = await login(sd.app)
      const res = await put('/api/apps/widget/policy', { policy: { window: { calendar: zone, durationMinutes: 60 } } }, sd)
      expect(res.status).toBe(400)
      expect(((await res.json()) as { error: { message: string } }).error.message).toContain(`systemd-analyze does not accept the window "${zone}": Failed to parse calendar specification`)
      const ok = await put('/api/apps/widget/policy', { policy: { window: { calendar: 'Mon..Fri 02:30 Europe/Berlin', durationMinutes: 60 } } }, sd)
      expect(ok.status).toBe(200)
    } finally {
      await sd.cleanup()
    }
  })
})

describe('PUT /api/pause', () => {
  test('the one switch for all apps', async () => {
    const res = await put('/api/pause', { paused: true })
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({ paused: true })
    const v = (await (await get('/api/apps/widget/policy')).json()) as AutoUpdateView
    expect(v.pausedAll).toBe(true)
    expect(v.decision.reason).toEqual({ code: 'paused-all', text: 'paused for all apps' })
    expect(await (await put('/api/pause', { paused: false })).json()).toEqual({ paused: false })
    expect((await put('/api/pause', { paused: 'yes' })).status).toBe(400)
  })
})

describe('POST /api/apps/:app/webhooks/test', () => {
  test('sends a signed test event to a saved webhook and says what the receiver answered', async () => {
    await put('/api/apps/widget/policy', { webhooks: [{ url: receiverUrl, preset: 'json', secret: 's3cret-s3cret' }] })
    const res = await post('/api/apps/widget/webhooks/test', { url: receiverUrl })
    expect(res.status).toBe(200)
    expect(await res.json()).toMatchObject({ ok: true, status: 202, body: 'got it' })
    expect(received).toHaveLength(1)
    const [r] = received
    expect(JSON.parse(r!.body)).toMatchObject({ schema: 1, event: 'test', app: 'widget', status: 'test' })
    expect(r!.headers['x-upkeep-event']).toBe('test')
    // Signed with the stored secret, which the browser never had.
    expect(r!.headers['x-upkeep-signature']).toBe(signature('s3cret-s3cret', Number(r!.headers['x-upkeep-timestamp']), r!.body))
  })

  test('an unreachable receiver is reported, not thrown', async () => {
    const closed = await freePort()
    const res = await post('/api/apps/widget/webhooks/test', { url: `http://127.0.0.1:${closed}/nobody`, preset: 'json' })
    expect(res.status).toBe(200)
    expect(await res.json()).toMatchObject({ ok: false, error: 'connection refused' })
  })
})
