import { existsSync } from 'node:fs'
import { readFile, writeFile } from 'node:fs/promises'
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import type { UpdatesStatus } from '../../server/services/updates'
import { adminHeaders, login } from '../support/auth'
import { fakeClock, MINUTE } from '../support/clock'
import { githubRelease, setupGitHubMock } from '../support/msw'
import { createTestApp, type TestApp } from '../support/test-app'

const clock = fakeClock()
const github = setupGitHubMock(clock)
let t: TestApp
let cookie: string

beforeEach(async () => {
  clock.set('2026-11-23T10:00:00.000Z')
  t = await createTestApp({ clock })
  cookie = await login(t.app)
})
afterEach(() => t.cleanup())

const get = async () => {
  const res = await t.app.request('/api/settings', { headers: { cookie } })
  expect(res.status).toBe(200)
  return res.json()
}
const put = (body: unknown) => t.app.request('/api/settings', { method: 'PUT', headers: adminHeaders(cookie), body: JSON.stringify(body) })

describe('GET /api/settings', () => {
  test('defaults, and what the environment pins', async () => {
    expect(await get()).toEqual({
      updateRepo: null,
      channel: 'stable',
      checkEnabled: true,
      env: { UPDATE_REPO: null, UPDATE_CHECK_DISABLED: false },
    })
    const pinned = await createTestApp({ clock, env: { UPDATE_REPO: 'acme/pinned', UPDATE_CHECK_DISABLED: 'true' } })
    try {
      const c = await login(pinned.app)
      expect(await (await pinned.app.request('/api/settings', { headers: { cookie: c } })).json()).toMatchObject({
        env: { UPDATE_REPO: 'acme/pinned', UPDATE_CHECK_DISABLED: true },
      })
    } finally {
      await pinned.cleanup()
    }
  })
})

describe('PUT /api/settings', () => {
  test('stores a partial change atomically in data/settings.json and answers the new settings', async () => {
    const res = await put({ updateRepo: 'https://github.com/Acme/Widget.git', channel: 'prerelease' })
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({ updateRepo: 'Acme/Widget', channel: 'prerelease', checkEnabled: true, env: { UPDATE_REPO: null, UPDATE_CHECK_DISABLED: false } })
    expect((await put({ checkEnabled: false })).status).toBe(200)
    expect(JSON.parse(await readFile(t.services.paths.settings, 'utf8'))).toEqual({ updateRepo: 'Acme/Widget', channel: 'prerelease', checkEnabled: false })
    expect(await get()).toMatchObject({ updateRepo: 'Acme/Widget', channel: 'prerelease', checkEnabled: false })
  })

  test.each([
    [{ channel: 'nightly' }, 'BAD_REQUEST', 'channel must be one of stable, prerelease, got "nightly"'],
    [{ checkEnabled: 'yes' }, 'BAD_REQUEST', 'checkEnabled must be true or false, got "yes"'],
    [{ updateRepo: 42 }, 'BAD_REQUEST', 'updateRepo must be a string such as "acme/widget", or null'],
    [{ updateRepo: 'acme/widget', admin: true }, 'BAD_REQUEST', 'unknown setting "admin"'],
    [['acme/widget'], 'BAD_REQUEST', 'the request body must be a JSON object'],
    [{ updateRepo: 'https://gitlab.com/acme/widget' }, 'BAD_REPO', 'updateRepo "https://gitlab.com/acme/widget" is not a repository URL of github.com or www.github.com or ssh.github.com'],
  ])('%o → 400 %s, nothing changes', async (body, code, message) => {
    await put({ channel: 'prerelease' })
    const before = await readFile(t.services.paths.settings, 'utf8')
    const res = await put(body)
    expect(res.status).toBe(400)
    expect(await res.json()).toMatchObject({ error: { code, message } })
    expect(await readFile(t.services.paths.settings, 'utf8')).toBe(before)
  })

  test('a body that is not JSON is 400', async () => {
    const res = await t.app.request('/api/settings', { method: 'PUT', headers: adminHeaders(cookie), body: '{"channel":' })
    expect(res.status).toBe(400)
  })

  test('changing the channel drops the cached releases; other changes keep them', async () => {
    await put({ updateRepo: 'acme/widget' })
    github.serveReleases('acme/widget', [githubRelease('v1.6.0-rc.1', { prerelease: true }), githubRelease('v1.5.0')])
    const status = async () => (await (await t.app.request('/api/updates', { headers: { cookie } })).json()) as UpdatesStatus
    expect((await status()).latest?.tag).toBe('v1.5.0')
    expect(github.requests).toHaveLength(1)

    clock.advance(1 * MINUTE)
    await put({ checkEnabled: true })
    await status()
    expect(github.requests).toHaveLength(1)

    await put({ channel: 'prerelease' })
    expect(existsSync(t.services.upkeepPaths.releaseCache)).toBe(false)
    expect((await status()).latest?.tag).toBe('v1.6.0-rc.1')
    expect(github.requests).toHaveLength(2)
  })

  test('keys written by a newer version survive a save', async () => {
    await writeFile(t.services.paths.settings, JSON.stringify({ channel: 'stable', bannerDismissed: 'v1.5.0' }))
    await put({ channel: 'prerelease' })
    expect(JSON.parse(await readFile(t.services.paths.settings, 'utf8'))).toEqual({
      channel: 'prerelease',
      bannerDismissed: 'v1.5.0',
      updateRepo: null,
      checkEnabled: true,
    })
  })

  test('an unreadable settings.json reads as defaults and is kept aside on the next save', async () => {
    await writeFile(t.services.paths.settings, '{ not json')
    expect(await get()).toMatchObject({ updateRepo: null, channel: 'stable' })
    expect((await put({ channel: 'prerelease' })).status).toBe(200)
    expect(await readFile(`${t.services.paths.settings}.bad`, 'utf8')).toBe('{ not json')
    expect(await get()).toMatchObject({ channel: 'prerelease' })
  })

  test('saves in a row do not lose each other', async () => {
    await Promise.all([put({ channel: 'prerelease' }), put({ checkEnabled: false }), put({ updateRepo: 'acme/widget' })])
    expect(await get()).toMatchObject({ channel: 'prerelease', checkEnabled: false, updateRepo: 'acme/widget' })
  })
})
