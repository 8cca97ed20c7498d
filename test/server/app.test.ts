import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { Hono } from 'hono'
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest'
import { errorHandler } from '../../server/errors'
import { UpdateError } from '../../updater/shared/errors'
import { silentLogger } from '../../updater/shared/log'
import { login } from '../support/auth'
import { createTestApp, type TestApp, type TestAppOptions } from '../support/test-app'

const apps: TestApp[] = []
async function testApp(opts: TestAppOptions = {}) {
  const t = await createTestApp({ build: { version: '1.4.0', commit: 'abc123' }, ...opts })
  apps.push(t)
  return t.app
}
afterEach(async () => {
  for (const t of apps.splice(0)) await t.cleanup()
})

describe('GET /api/health', () => {
  test('answers status, version, commit and start time, without a session', async () => {
    const res = await (await testApp()).request('/api/health')
    expect(res.status).toBe(200)
    expect(res.headers.get('cache-control')).toBe('no-store')
    expect(await res.json()).toEqual({ status: 'ok', version: '1.4.0', commit: 'abc123', startedAt: '2026-11-23T10:00:00.000Z' })
  })
})

describe('errors', () => {
  test('unknown API routes are 404 JSON (to an admin; 401 to anyone else)', async () => {
    const app = await testApp()
    expect((await app.request('/api/nope')).status).toBe(401)
    const res = await app.request('/api/nope', { method: 'POST', headers: { cookie: await login(app), 'content-type': 'application/json' } })
    expect(res.status).toBe(404)
    expect(await res.json()).toEqual({ error: { code: 'NOT_FOUND', message: 'no route for POST /api/nope' } })
  })

  const app = new Hono()
    .get('/known', () => {
      throw new UpdateError('LOCKED', 'an update is running', { hint: 'wait for it to finish' })
    })
    .get('/boom', () => {
      throw new Error('secret internals at /etc/shadow')
    })
    .onError(errorHandler(silentLogger()))

  test('an UpdateError answers its code, message and hint with its status', async () => {
    const res = await app.request('/known')
    expect(res.status).toBe(409)
    expect(await res.json()).toEqual({ error: { code: 'LOCKED', message: 'an update is running', hint: 'wait for it to finish' } })
  })

  test('anything else is a 500 that does not leak internals', async () => {
    const res = await app.request('/boom')
    expect(res.status).toBe(500)
    const body = await res.text()
    expect(body).not.toContain('shadow')
    expect(JSON.parse(body)).toEqual({ error: { code: 'INTERNAL', message: 'internal server error' } })
  })
})

describe('web assets', () => {
  let webDir: string
  beforeAll(async () => {
    webDir = await mkdtemp(path.join(tmpdir(), 'upkeep-web-'))
    await mkdir(path.join(webDir, 'assets'))
    await writeFile(path.join(webDir, 'index.html'), '<!doctype html><title>Upkeep</title>')
    await writeFile(path.join(webDir, 'assets', 'index-abc.js'), 'console.log(1)')
  })
  afterAll(() => rm(webDir, { recursive: true, force: true }))

  test('index.html is never cached, hashed assets are immutable, client routes get the shell', async () => {
    const app = await testApp({ webDir })
    const index = await app.request('/')
    expect(index.status).toBe(200)
    expect(index.headers.get('cache-control')).toBe('no-cache')
    const asset = await app.request('/assets/index-abc.js')
    expect(asset.headers.get('cache-control')).toContain('immutable')
    const route = await app.request('/settings/updates')
    expect(await route.text()).toContain('<title>Upkeep</title>')
    expect((await app.request('/assets/missing.js')).status).toBe(404)
  })
})
