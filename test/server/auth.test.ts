import { readFile, stat } from 'node:fs/promises'
import path from 'node:path'
import { Writable } from 'node:stream'
import { getRequestListener } from '@hono/node-server'
import { pino } from 'pino'
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import { startHttpServer } from '../../server/http-server'
import { ensureAdminPassword, setAdminPassword } from '../../server/services/password'
import { silentLogger } from '../../updater/shared/log'
import { adminHeaders, login, sessionCookieOf, TEST_ADMIN_PASSWORD } from '../support/auth'
import { fakeClock, MINUTE } from '../support/clock'
import { rawRequest, serveApp } from '../support/http-request'
import { createTestApp, type TestApp } from '../support/test-app'

const clock = fakeClock()
let t: TestApp
const extra: TestApp[] = []

beforeEach(async () => {
  clock.set('2026-11-23T10:00:00.000Z')
  t = await createTestApp({ clock, env: { UPDATE_REPO: 'acme/widget', UPDATE_CHECK_DISABLED: 'true' } })
})
afterEach(async () => {
  for (const a of extra.splice(0)) await a.cleanup()
  await t.cleanup()
})

const restart = async () => {
  const a = await createTestApp({ clock, env: { UPDATE_REPO: 'acme/widget', UPDATE_CHECK_DISABLED: 'true' }, dataDir: t.dataDir })
  extra.push(a)
  return a
}

const loginRequest = (password: string, headers: Record<string, string> = {}, url = '/api/auth/login') =>
  t.app.request(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ password }) })

describe('must show 5: admin auth', () => {
  test('without a session every API route but health answers 401 JSON', async () => {
    const res = await t.app.request('/api/updates')
    expect(res.status).toBe(401)
    expect(res.headers.get('content-type')).toMatch(/^application\/json/)
    expect(await res.json()).toEqual({ error: { code: 'UNAUTHORIZED', message: 'log in first', hint: expect.stringContaining('/api/auth/login') } })

    const json = { 'content-type': 'application/json' }
    const routes: [string, RequestInit][] = [
      ['/api/updates/check', { method: 'POST', headers: json }],
      ['/api/settings', {}],
      ['/api/settings', { method: 'PUT', headers: json, body: '{"channel":"prerelease"}' }],
      ['/api/updates/apply', { method: 'POST', headers: json, body: '{}' }],
      ['/api/updates/', {}],
      ['/api//updates', {}],
      ['/api/%75pdates', {}],
      ['/api/health/../updates', {}],
      ['/api', {}],
    ]
    for (const [url, init] of routes) expect([url, (await t.app.request(url, init)).status]).toEqual([url, 401])
    expect((await t.services.settings.read()).channel).toBe('stable')
    expect((await t.app.request('/api/health')).status).toBe(200)
  })

  test('with a session the same routes answer', async () => {
    const cookie = await login(t.app)
    expect((await t.app.request('/api/updates', { headers: { cookie } })).status).toBe(200)
    expect((await t.app.request('/api/settings', { headers: { cookie } })).status).toBe(200)
  })

  test('a cross-site POST with a session is refused with 403 and changes nothing', async () => {
    const cookie = await login(t.app)
    const crossSite: Record<string, string>[] = [
      // What a form on another site sends.
      { cookie, 'content-type': 'application/x-www-form-urlencoded', origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' },
      { cookie, 'content-type': 'text/plain', origin: 'https://evil.example' },
      { cookie, 'content-type': 'multipart/form-data; boundary=x', 'sec-fetch-site': 'cross-site' },
      // No content type at all counts as text/plain.
      { cookie, origin: 'null' },
      // Not a type a form can send, but the request says it is cross-site.
      { cookie, 'content-type': 'application/json', origin: 'https://evil.example' },
      { cookie, 'content-type': 'application/json', 'sec-fetch-site': 'same-site' },
    ]
    for (const headers of crossSite) {
      const res = await t.app.request('/api/settings', { method: 'PUT', headers, body: '{"channel":"prerelease"}' })
      expect(res.status).toBe(403)
      expect(await res.json()).toEqual({ error: { code: 'FORBIDDEN', message: 'cross-site request refused', hint: expect.any(String) } })
      const check = await t.app.request('/api/updates/check', { method: 'POST', headers })
      expect(check.status).toBe(403)
    }
    expect((await t.services.settings.read()).channel).toBe('stable')

    // The same request from the UI's own origin goes through.
    const same = await t.app.request('/api/settings', {
      method: 'PUT',
      headers: { ...adminHeaders(cookie), origin: 'http://localhost', 'sec-fetch-site': 'same-origin' },
      body: '{"channel":"prerelease"}',
    })
    expect(same.status).toBe(200)
    expect((await t.services.settings.read()).channel).toBe('prerelease')
  })

  test('a cross-site login is refused too', async () => {
    const res = await t.app.request('/api/auth/login', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://evil.example' },
      body: `password=${TEST_ADMIN_PASSWORD}`,
    })
    expect(res.status).toBe(403)
    expect(sessionCookieOf(res)).toBeUndefined()
  })

  test('10 wrong passwords: throttled after 5, even the right password, until 15 minutes passed', async () => {
    const statuses: number[] = []
    for (let i = 0; i < 10; i++) statuses.push((await loginRequest(`wrong-${i}`)).status)
    expect(statuses).toEqual([401, 401, 401, 401, 401, 429, 429, 429, 429, 429])

    const throttled = await loginRequest(TEST_ADMIN_PASSWORD)
    expect(throttled.status).toBe(429)
    expect(throttled.headers.get('retry-after')).toBe('900')
    expect(await throttled.json()).toMatchObject({ error: { code: 'RATE_LIMITED', message: 'too many failed logins; try again in 15 min' } })
    expect(sessionCookieOf(throttled)).toBeUndefined()

    clock.advance(14 * MINUTE)
    expect((await loginRequest(TEST_ADMIN_PASSWORD)).status).toBe(429)
    clock.advance(1 * MINUTE)
    const ok = await loginRequest(TEST_ADMIN_PASSWORD)
    expect(ok.status).toBe(200)
    expect(sessionCookieOf(ok)).toBeDefined()
  })

  test('the throttle is per client (behind a local proxy: per X-Forwarded-For)', async () => {
    const server = await startHttpServer(getRequestListener(t.app.fetch), { kind: 'tcp', host: '127.0.0.1', port: 0 }, { log: silentLogger() })
    try {
      const from = (ip: string, password: string) =>
        fetch(`${server.url}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-forwarded-for': `198.51.100.1, ${ip}` }, body: JSON.stringify({ password }) })
      for (let i = 0; i < 5; i++) expect((await from('203.0.113.5', 'wrong')).status).toBe(401)
      expect((await from('203.0.113.5', TEST_ADMIN_PASSWORD)).status).toBe(429)
      expect((await from('203.0.113.6', TEST_ADMIN_PASSWORD)).status).toBe(200)
    } finally {
      await server.close()
    }
  })
})

describe('login and sessions', () => {
  test('the session cookie is HttpOnly, SameSite=Strict, for the whole site, and lasts 7 days', async () => {
    const res = await loginRequest(TEST_ADMIN_PASSWORD)
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({ authenticated: true, expiresAt: '2026-11-30T10:00:00.000Z' })
    const [cookie] = res.headers.getSetCookie()
    expect(cookie).toMatch(/^upkeep_session=[A-Za-z0-9_-]{43}; Max-Age=604800; Path=\/; HttpOnly; SameSite=Strict$/)
  })

  test('Secure when the request came over https, directly or from a local proxy', async () => {
    const direct = await loginRequest(TEST_ADMIN_PASSWORD, {}, 'https://upkeep.example.com/api/auth/login')
    expect(direct.headers.getSetCookie()[0]).toMatch(/; Secure/)

    const server = await startHttpServer(getRequestListener(t.app.fetch), { kind: 'tcp', host: '127.0.0.1', port: 0 }, { log: silentLogger() })
    try {
      const post = (headers: Record<string, string>) =>
        fetch(`${server.url}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ password: TEST_ADMIN_PASSWORD }) })
      expect((await post({ 'x-forwarded-proto': 'https' })).headers.getSetCookie()[0]).toMatch(/; Secure/)
      expect((await post({})).headers.getSetCookie()[0]).not.toMatch(/Secure/)
    } finally {
      await server.close()
    }

    // A remote peer cannot claim https with a header.
    const remote = { incoming: { socket: { remoteAddress: '203.0.113.9', remotePort: 5555, remoteFamily: 'IPv4' } } }
    const forged = await t.app.request(
      '/api/auth/login',
      { method: 'POST', headers: { 'content-type': 'application/json', 'x-forwarded-proto': 'https' }, body: JSON.stringify({ password: TEST_ADMIN_PASSWORD }) },
      remote,
    )
    expect(forged.status).toBe(200)
    expect(forged.headers.getSetCookie()[0]).not.toMatch(/Secure/)
  })

  test('a same-origin POST behind an https proxy passes the CSRF check', async () => {
    // The proxy forwards the name the browser used; the server must be told it answers to it.
    const proxied = await createTestApp({ clock, env: { UPDATE_REPO: 'acme/widget', UPDATE_CHECK_DISABLED: 'true', UPKEEP_ALLOWED_HOSTS: 'upkeep.example.com' }, dataDir: t.dataDir })
    extra.push(proxied)
    const server = await startHttpServer(getRequestListener(proxied.app.fetch), { kind: 'tcp', host: '127.0.0.1', port: 0 }, { log: silentLogger() })
    try {
      const cookie = await login(server.url)
      const res = await fetch(`${server.url}/api/settings`, {
        method: 'PUT',
        headers: { cookie, 'content-type': 'text/plain', origin: 'https://upkeep.example.com', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'upkeep.example.com' },
        body: '{"checkEnabled":false}',
      })
      // Past CSRF (the origin matches what the proxy reports); refused only for not being JSON.
      expect(res.status).toBe(400)
      expect(await res.json()).toMatchObject({ error: { code: 'BAD_REQUEST', hint: 'send Content-Type: application/json' } })
    } finally {
      await server.close()
    }
  })

  test('curl -X POST …/api/auth/logout (no body, no Content-Type) ends the session; cross-site ones are still refused', async () => {
    const server = await serveApp(t.app)
    try {
      const cookie = await login(server.url)
      const curlPost = (pathname: string, extra: string[] = [], body = '') =>
        rawRequest(server.url, [`POST ${pathname} HTTP/1.1`, `Host: 127.0.0.1:${server.port}`, 'User-Agent: curl/7.88.1', 'Accept: */*', `Cookie: ${cookie}`, ...extra], body)
      const alive = async () => (await fetch(`${server.url}/api/updates`, { headers: { cookie } })).status === 200
      for (const extra of [['Origin: https://evil.example'], ['Origin: null'], ['Sec-Fetch-Site: cross-site'], ['Sec-Fetch-Site: same-site']]) {
        expect([extra, (await curlPost('/api/auth/logout', extra)).status]).toEqual([extra, 403])
      }
      // A body without a Content-Type is what a form could send: the Origin check still applies.
      expect((await curlPost('/api/auth/logout', ['Content-Length: 2'], '{}')).status).toBe(403)
      expect(await alive()).toBe(true)
      // The same as the UI sends it from its own origin, and as a program sends it.
      expect((await curlPost('/api/updates/check', [`Origin: http://127.0.0.1:${server.port}`, 'Sec-Fetch-Site: same-origin'])).status).toBe(200)
      const res = await curlPost('/api/auth/logout')
      expect(res.status).toBe(200)
      expect(res.text).toContain('{"authenticated":false}')
      expect(await alive()).toBe(false)
    } finally {
      await server.close()
    }
  })

  test('GET /api/auth/session tells the UI whether it is logged in', async () => {
    expect(await (await t.app.request('/api/auth/session')).json()).toEqual({ authenticated: false })
    const cookie = await login(t.app)
    expect(await (await t.app.request('/api/auth/session', { headers: { cookie } })).json()).toEqual({ authenticated: true, expiresAt: '2026-11-30T10:00:00.000Z' })
    expect(await (await t.app.request('/api/auth/session', { headers: { cookie: 'upkeep_session=forged' } })).json()).toEqual({ authenticated: false })
  })

  test('a wrong password is 401 and sets no cookie; a malformed login is 400', async () => {
    const res = await loginRequest('not the password')
    expect(res.status).toBe(401)
    expect(await res.json()).toEqual({ error: { code: 'UNAUTHORIZED', message: 'wrong password' } })
    expect(sessionCookieOf(res)).toBeUndefined()
    const bad = await t.app.request('/api/auth/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"pass":1}' })
    expect(bad.status).toBe(400)
    const notJson = await t.app.request('/api/auth/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{' })
    expect(notJson.status).toBe(400)
  })

  test('sessions survive a server restart', async () => {
    const cookie = await login(t.app)
    const restarted = await restart()
    expect((await restarted.app.request('/api/updates', { headers: { cookie } })).status).toBe(200)
  })

  test('logout ends the session, on this and on a restarted server', async () => {
    const cookie = await login(t.app)
    const other = await login(t.app)
    const res = await t.app.request('/api/auth/logout', { method: 'POST', headers: adminHeaders(cookie) })
    expect(res.status).toBe(200)
    expect(res.headers.getSetCookie()[0]).toMatch(/^upkeep_session=; Max-Age=0; Path=\/; HttpOnly; SameSite=Strict/)
    expect((await t.app.request('/api/updates', { headers: { cookie } })).status).toBe(401)
    expect((await (await restart()).app.request('/api/updates', { headers: { cookie } })).status).toBe(401)
    // Only that session: the other login is still good.
    expect((await t.app.request('/api/updates', { headers: { cookie: other } })).status).toBe(200)
  })

  test('a new admin password ends every session', async () => {
    const cookie = await login(t.app)
    await setAdminPassword(t.services.paths.adminPassword, 'a brand new password', { clock })
    expect((await t.app.request('/api/updates', { headers: { cookie } })).status).toBe(401)
    await expect(login(t.app)).rejects.toThrow(/401/)
    expect(await login(t.app, 'a brand new password')).toMatch(/^upkeep_session=/)
  })

  test('sessions expire after 7 days', async () => {
    const cookie = await login(t.app)
    clock.advance(7 * 24 * 60 * MINUTE - 1000)
    expect((await t.app.request('/api/updates', { headers: { cookie } })).status).toBe(200)
    clock.advance(2000)
    expect((await t.app.request('/api/updates', { headers: { cookie } })).status).toBe(401)
  })

  test('data/ holds only hashes, readable by the owner alone', async () => {
    const cookie = await login(t.app)
    const token = cookie.split('=')[1]!
    const passwordFile = await readFile(t.services.paths.adminPassword, 'utf8')
    const sessionsFile = await readFile(t.services.paths.sessions, 'utf8')
    expect(passwordFile).not.toContain(TEST_ADMIN_PASSWORD)
    expect(JSON.parse(passwordFile).hash).toMatch(/^scrypt\$32768\$8\$3\$/)
    expect(sessionsFile).not.toContain(token)
    await setAdminPassword(t.services.paths.adminPassword, 'another password', { clock })
    expect((await stat(t.services.paths.adminPassword)).mode & 0o777).toBe(0o600)
    expect((await stat(t.services.paths.sessions)).mode & 0o777).toBe(0o600)
  })
})

describe('the first start', () => {
  function capture() {
    const lines: Record<string, unknown>[] = []
    const stream = new Writable({
      write(chunk, _enc, done) {
        lines.push(JSON.parse(String(chunk)))
        done()
      },
    })
    return { log: pino({ level: 'info' }, stream), lines }
  }

  test('without UPKEEP_ADMIN_PASSWORD a password is generated and logged once, with how to change it', async () => {
    const file = path.join(t.dataDir, 'first', 'admin-password.json')
    const { log, lines } = capture()
    await ensureAdminPassword(file, { initial: undefined, log, clock })
    await ensureAdminPassword(file, { initial: undefined, log, clock })
    await new Promise((r) => setImmediate(r))
    expect(lines).toHaveLength(1)
    const msg = String(lines[0]!.msg)
    expect(msg).toMatch(/^initial admin password: [A-Za-z0-9_-]{24} \(shown only this once; log in with it, then change it with `upkeep set-password`\)$/)
    const password = msg.split(' ')[3]!
    expect(lines[0]!.initialAdminPassword).toBe(password)
    expect(await readFile(file, 'utf8')).not.toContain(password)
  })

  test('UPKEEP_ADMIN_PASSWORD sets it on the first start only', async () => {
    const fresh = await createTestApp({ clock, seedPassword: false, env: { UPDATE_CHECK_DISABLED: 'true' } })
    extra.push(fresh)
    const { log, lines } = capture()
    await ensureAdminPassword(fresh.services.paths.adminPassword, { initial: 'from the environment', log, clock })
    await ensureAdminPassword(fresh.services.paths.adminPassword, { initial: 'changed later, ignored', log, clock })
    await new Promise((r) => setImmediate(r))
    expect(lines.map((l) => l.msg)).toEqual(['stored the admin password from UPKEEP_ADMIN_PASSWORD'])
    expect(JSON.stringify(lines)).not.toContain('from the environment')
    expect(await login(fresh.app, 'from the environment')).toMatch(/^upkeep_session=/)
    await expect(login(fresh.app, 'changed later, ignored')).rejects.toThrow(/401/)
  })
})
