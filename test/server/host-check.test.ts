import { afterEach, describe, expect, test } from 'vitest'
import type { HttpServerHandle } from '../../server/http-server'
import { isAllowedHost, type HostPolicy } from '../../server/middleware/host-check'
import type { Env } from '../../updater/shared/config'
import { TEST_ADMIN_PASSWORD } from '../support/auth'
import { httpRequest, serveApp } from '../support/http-request'
import { createTestApp, type TestApp } from '../support/test-app'

const loopback: HostPolicy = { host: '127.0.0.1', allowedHosts: [] }
const named: HostPolicy = { host: 'upkeep.lan', allowedHosts: [] }
const anyAddress: HostPolicy = { host: '0.0.0.0', allowedHosts: [] }
const proxied: HostPolicy = { host: '127.0.0.1', allowedHosts: ['upkeep.example.com'] }
const open: HostPolicy = { host: '0.0.0.0', allowedHosts: '*' }

describe('isAllowedHost', () => {
  test.each([
    [loopback, '127.0.0.1:8080', true],
    [loopback, 'localhost', true],
    [loopback, 'LOCALHOST:8080', true],
    [loopback, '[::1]:8080', true],
    [loopback, 'app.localhost:8080', true],
    [loopback, '127.1.2.3', true],
    // An address is not a name a page can re-point: no rebinding through it.
    [loopback, '192.168.1.5:8080', true],
    [loopback, '[fe80::1]', true],
    [loopback, 'evil.example', false],
    [loopback, 'evil.example:8080', false],
    [loopback, '127.0.0.1.nip.io', false],
    [loopback, 'localhost.evil.example', false],
    [loopback, '', false],
    [loopback, 'a b', false],
    [loopback, 'user@127.0.0.1', false],
    [loopback, '127.0.0.1/x', false],
    [named, 'upkeep.lan:8080', true],
    [named, 'UPKEEP.LAN.', true],
    [named, 'other.lan', false],
    // Listening on every address says nothing of the names it is reached by: only the list does.
    [anyAddress, 'myserver.lan:8080', false],
    [anyAddress, '10.0.0.5:8080', true],
    [proxied, 'upkeep.example.com', true],
    [proxied, 'Upkeep.Example.com:443', true],
    [proxied, 'sub.upkeep.example.com', false],
    [open, 'anything.example', true],
  ])('%o: Host %j → %s', (policy, header, allowed) => {
    expect(isAllowedHost(header, policy)).toBe(allowed)
  })
})

describe('must show 4: the Host check on a real server', () => {
  const running: { server: HttpServerHandle; t: TestApp }[] = []
  afterEach(async () => {
    for (const { server, t } of running.splice(0)) {
      await server.close()
      await t.cleanup()
    }
  })

  async function start(env: Env = {}) {
    const t = await createTestApp({ env: { UPDATE_REPO: 'acme/widget', UPDATE_CHECK_DISABLED: 'true', ...env } })
    const server = await serveApp(t.app)
    running.push({ server, t })
    return {
      get: (pathname: string, headers: Record<string, string>) => httpRequest(`${server.url}${pathname}`, { headers }),
      login: (headers: Record<string, string>) =>
        httpRequest(`${server.url}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ password: TEST_ADMIN_PASSWORD }) }),
      port: server.port!,
    }
  }

  test('a DNS-rebinding page (its own name in Host and Origin) is refused before any route, with a hint', async () => {
    const s = await start()
    const res = await s.login({ host: `rebind.example:${s.port}`, origin: `http://rebind.example:${s.port}` })
    expect(res.status).toBe(421)
    expect(res.headers['set-cookie']).toBeUndefined()
    expect(JSON.parse(res.body)).toEqual({
      error: { code: 'UNKNOWN_HOST', message: `this server does not answer to the host name "rebind.example:${s.port}"`, hint: expect.stringContaining('UPKEEP_ALLOWED_HOSTS') },
    })
    for (const pathname of ['/api/health', '/api/auth/session', '/']) expect((await s.get(pathname, { host: 'rebind.example' })).status).toBe(421)
  })

  test('loopback names and addresses are answered', async () => {
    const s = await start()
    for (const host of [`127.0.0.1:${s.port}`, `localhost:${s.port}`, `[::1]:${s.port}`, 'localhost']) {
      expect([host, (await s.get('/api/health', { host })).status]).toEqual([host, 200])
    }
    expect((await s.login({ host: `localhost:${s.port}`, origin: `http://localhost:${s.port}` })).status).toBe(200)
  })

  test('HOST, when a name, is answered; with HOST=0.0.0.0 other names need UPKEEP_ALLOWED_HOSTS', async () => {
    expect((await (await start({ HOST: 'upkeep.lan' })).get('/api/health', { host: 'upkeep.lan:8080' })).status).toBe(200)
    const everywhere = await start({ HOST: '0.0.0.0' })
    expect((await everywhere.get('/api/health', { host: 'myserver.lan:8080' })).status).toBe(421)
    expect((await everywhere.get('/api/health', { host: '192.168.1.5:8080' })).status).toBe(200)
    const listed = await start({ HOST: '0.0.0.0', UPKEEP_ALLOWED_HOSTS: 'myserver.lan' })
    expect((await listed.get('/api/health', { host: 'myserver.lan:8080' })).status).toBe(200)
    expect((await listed.get('/api/health', { host: 'other.lan:8080' })).status).toBe(421)
    expect((await (await start({ UPKEEP_ALLOWED_HOSTS: '*' })).get('/api/health', { host: 'other.lan' })).status).toBe(200)
  })

  test('behind a local reverse proxy the forwarded name counts too', async () => {
    const plain = await start()
    // The proxy's default site passes anything on: the browser's name is in X-Forwarded-Host.
    expect((await plain.get('/api/health', { host: `127.0.0.1:${plain.port}`, 'x-forwarded-host': 'rebind.example' })).status).toBe(421)
    const s = await start({ UPKEEP_ALLOWED_HOSTS: 'upkeep.example.com' })
    expect((await s.get('/api/health', { host: `127.0.0.1:${s.port}`, 'x-forwarded-host': 'upkeep.example.com' })).status).toBe(200)
    expect((await s.get('/api/health', { host: 'upkeep.example.com' })).status).toBe(200)
    const res = await s.login({ host: `127.0.0.1:${s.port}`, 'x-forwarded-host': 'upkeep.example.com', 'x-forwarded-proto': 'https', origin: 'https://upkeep.example.com' })
    expect(res.status).toBe(200)
  })
})
