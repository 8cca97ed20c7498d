import { execFileSync } from 'node:child_process'
import { constants } from 'node:fs'
import { lstat, open, rm, symlink, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import type { HttpServerHandle } from '../../server/http-server'
import { login, TEST_ADMIN_PASSWORD } from '../support/auth'
import { serveApp } from '../support/http-request'
import { createTestApp, type TestApp } from '../support/test-app'

// The server user may be compromised and can write data/: whatever it plants there (a FIFO, a
// symlink, a huge file) must cost one refused file, never a hung or bloated server. Each request
// has a bound: today's code hung on these for good; the bound is what makes that a failure.

let t: TestApp
let server: HttpServerHandle
let cookie: string
const fifos: string[] = []

beforeEach(async () => {
  t = await createTestApp({ env: { UPDATE_REPO: 'acme/widget', UPDATE_CHECK_DISABLED: 'true' } })
  server = await serveApp(t.app)
  cookie = await login(server.url)
})
afterEach(async () => {
  // A reader still blocked in open(2) on a FIFO (a thread of the pool) gets its EOF now.
  for (const fifo of fifos.splice(0)) {
    const h = await open(fifo, constants.O_WRONLY | constants.O_NONBLOCK).catch(() => undefined)
    await h?.close()
  }
  await server.close()
  await t.cleanup()
})

async function mkfifo(file: string) {
  await rm(file, { force: true })
  execFileSync('mkfifo', [file])
  fifos.push(file)
}

const request = (pathname: string, init: RequestInit = {}) => fetch(`${server.url}${pathname}`, { ...init, signal: AbortSignal.timeout(10_000) })
const getJson = async (pathname: string) => {
  const res = await request(pathname, { headers: { cookie } })
  return { status: res.status, body: (await res.json()) as Record<string, unknown> }
}

describe('files planted in data/ do not hang the server', () => {
  test('a FIFO as settings.json reads as defaults, and the next save puts it aside', async () => {
    await mkfifo(t.services.paths.settings)
    expect(await getJson('/api/settings')).toMatchObject({ status: 200, body: { channel: 'stable' } })
    expect((await getJson('/api/updates')).status).toBe(200)
    const put = await request('/api/settings', { method: 'PUT', headers: { cookie, 'content-type': 'application/json' }, body: '{"channel":"prerelease"}' })
    expect(put.status).toBe(200)
    expect((await lstat(t.services.paths.settings)).isFile()).toBe(true)
    expect((await lstat(`${t.services.paths.settings}.bad`)).isFIFO()).toBe(true)
    expect(await getJson('/api/settings')).toMatchObject({ body: { channel: 'prerelease' } })
  })

  test('a symlink as settings.json is not followed; a huge one is not read', async () => {
    const elsewhere = path.join(t.dataDir, '..', `elsewhere-${path.basename(t.dataDir)}.json`)
    await writeFile(elsewhere, '{"channel":"prerelease"}')
    try {
      await symlink(elsewhere, t.services.paths.settings)
      expect(await getJson('/api/settings')).toMatchObject({ status: 200, body: { channel: 'stable' } })
    } finally {
      await rm(elsewhere, { force: true })
    }
    await rm(t.services.paths.settings)
    await writeFile(t.services.paths.settings, JSON.stringify({ channel: 'prerelease', pad: 'x'.repeat(2 << 20) }))
    expect(await getJson('/api/settings')).toMatchObject({ status: 200, body: { channel: 'stable' } })
  })

  test('a FIFO as sessions.json ends the sessions, and a new login works', async () => {
    await mkfifo(t.services.paths.sessions)
    expect((await getJson('/api/settings')).status).toBe(401)
    cookie = await login(server.url)
    expect((await getJson('/api/settings')).status).toBe(200)
    expect((await lstat(t.services.paths.sessions)).isFile()).toBe(true)
  })

  test('a FIFO as update-request.json: the status still answers', async () => {
    await mkfifo(t.services.upkeepPaths.request)
    const status = await getJson('/api/updates')
    expect(status.status).toBe(200)
    expect(status.body.running).toMatchObject({ state: 'requested', updateId: null })
  })

  test('a FIFO as admin-password.json: logins fail with a hint, other routes answer', async () => {
    await mkfifo(t.services.paths.adminPassword)
    const res = await request('/api/auth/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ password: TEST_ADMIN_PASSWORD }) })
    expect(res.status).toBe(500)
    expect(await res.json()).toMatchObject({ error: { code: 'INTERNAL', message: expect.stringContaining('is not an admin password file'), hint: expect.stringContaining('upkeep set-password') } })
    expect((await request('/api/health')).status).toBe(200)
  })

  test('a FIFO as the status file: the event stream opens and waits', async () => {
    await mkfifo(t.services.upkeepPaths.status)
    const res = await request('/api/updates/events', { headers: { cookie } })
    expect(res.headers.get('content-type')).toContain('text/event-stream')
    const reader = res.body!.getReader()
    expect(new TextDecoder().decode((await reader.read()).value)).toContain('event: ready')
    expect((await getJson('/api/updates/history')).status).toBe(200)
    await reader.cancel()
  })
})
