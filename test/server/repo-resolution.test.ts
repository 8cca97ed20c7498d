import { existsSync, mkdirSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest'
import { createOriginGit } from '../../server/services/origin-git'
import type { UpdatesStatus } from '../../server/services/updates'
import { adminHeaders, login } from '../support/auth'
import { fakeClock } from '../support/clock'
import { fakeOriginGit } from '../support/fake-origin-git'
import { commitAll, git, initRepo } from '../support/git-fixtures'
import { githubRelease, setupGitHubMock } from '../support/msw'
import { createTestApp, type TestApp, type TestAppOptions } from '../support/test-app'

const clock = fakeClock()
const github = setupGitHubMock(clock)
const apps: TestApp[] = []
let work: string

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'upkeep-repo-'))
})
afterAll(() => rm(work, { recursive: true, force: true }))
beforeEach(() => clock.set('2026-11-23T10:00:00.000Z'))
afterEach(async () => {
  for (const a of apps.splice(0)) await a.cleanup()
})

async function appWith(opts: TestAppOptions): Promise<TestApp & { cookie: string }> {
  const t = await createTestApp({ clock, ...opts })
  apps.push(t)
  return { ...t, cookie: await login(t.app) }
}

async function status(t: TestApp & { cookie: string }): Promise<UpdatesStatus> {
  const res = await t.app.request('/api/updates', { headers: { cookie: t.cookie } })
  expect(res.status).toBe(200)
  return (await res.json()) as UpdatesStatus
}

/** A real checkout whose origin is `url`. */
function checkout(name: string, url?: string): string {
  const dir = path.join(work, name)
  mkdirSync(dir, { recursive: true })
  initRepo(dir)
  commitAll(dir, 'initial')
  if (url !== undefined) git(dir, ['remote', 'add', 'origin', url])
  return dir
}

describe('must show 3: UPDATE_REPO beats the setting, which beats origin', () => {
  beforeEach(() => {
    for (const repo of ['env-owner/from-env', 'set-owner/from-setting', 'origin-owner/from-origin']) github.serveReleases(repo, [githubRelease('v1.5.0', { repo })])
  })

  test('with all three, UPDATE_REPO wins', async () => {
    const t = await appWith({ env: { UPDATE_REPO: 'env-owner/from-env' }, git: createOriginGit(checkout('all-three', 'git@github.com:origin-owner/from-origin.git')) })
    await t.services.settings.update({ updateRepo: 'set-owner/from-setting' })
    const s = await status(t)
    expect(s.source).toEqual({ repo: 'env-owner/from-env', from: 'env' })
    expect(s.latest?.url).toBe('https://github.com/env-owner/from-env/releases/tag/v1.5.0')
    expect(github.requests.map((r) => new URL(r.url).pathname)).toEqual(['/repos/env-owner/from-env/releases'])
  })

  test('without UPDATE_REPO, the setting wins over origin', async () => {
    const t = await appWith({ git: createOriginGit(checkout('setting-origin', 'https://github.com/origin-owner/from-origin.git')) })
    await t.services.settings.update({ updateRepo: 'set-owner/from-setting' })
    expect((await status(t)).source).toEqual({ repo: 'set-owner/from-setting', from: 'setting' })
  })

  test.each([
    'https://github.com/origin-owner/from-origin.git',
    'https://x-access-token:ghs_abc@github.com/origin-owner/from-origin',
    'git@github.com:origin-owner/from-origin.git',
    'ssh://git@github.com/origin-owner/from-origin.git',
  ])('without either, the origin remote %s', async (url) => {
    const t = await appWith({ git: createOriginGit(checkout(`origin-${apps.length}-${Date.now()}`, url)) })
    const s = await status(t)
    expect(s.source).toEqual({ repo: 'origin-owner/from-origin', from: 'origin' })
    expect(s.latest?.tag).toBe('v1.5.0')
  })

  test('clearing the setting falls back to origin again and drops the cached answer', async () => {
    const t = await appWith({ git: createOriginGit(checkout('clear', 'git@github.com:origin-owner/from-origin.git')) })
    const put = (body: unknown) => t.app.request('/api/settings', { method: 'PUT', headers: adminHeaders(t.cookie), body: JSON.stringify(body) })
    expect((await put({ updateRepo: 'set-owner/from-setting' })).status).toBe(200)
    expect((await status(t)).source?.from).toBe('setting')
    expect(existsSync(t.services.upkeepPaths.releaseCache)).toBe(true)
    expect((await put({ updateRepo: null })).status).toBe(200)
    expect(existsSync(t.services.upkeepPaths.releaseCache)).toBe(false)
    expect((await status(t)).source).toEqual({ repo: 'origin-owner/from-origin', from: 'origin' })
  })
})

describe('must show 3: hostile repository names are rejected and nothing runs', () => {
  const HOSTILE = ['x;rm -rf /', '--upload-pack=evil/x', 'a/../b']

  test.each(HOSTILE)('PUT /api/settings {updateRepo: %o} → 400 BAD_REPO, nothing stored or fetched', async (value) => {
    const fake = fakeOriginGit({ url: 'git@github.com:acme/widget.git' })
    const t = await appWith({ git: fake })
    const res = await t.app.request('/api/settings', { method: 'PUT', headers: adminHeaders(t.cookie), body: JSON.stringify({ updateRepo: value }) })
    expect(res.status).toBe(400)
    const body = (await res.json()) as { error: { code: string; message: string; hint: string } }
    expect(body.error.code).toBe('BAD_REPO')
    expect(body.error.message).toContain(JSON.stringify(value))
    expect(body.error.hint).toMatch(/owner\/name, e\.g\. acme\/widget/)
    expect(existsSync(t.services.paths.settings)).toBe(false)
    expect(github.requests).toEqual([])
    expect(fake.transcript).toEqual([])
  })

  test.each(HOSTILE)('a hand-edited settings.json with updateRepo %o is reported, and neither git nor GitHub is asked', async (value) => {
    const fake = fakeOriginGit({ url: 'git@github.com:acme/widget.git', tags: ['v9.0.0'] })
    const t = await appWith({ git: fake })
    await writeFile(t.services.paths.settings, JSON.stringify({ updateRepo: value }))
    const s = await status(t)
    const checked = (await (await t.app.request('/api/updates/check', { method: 'POST', headers: adminHeaders(t.cookie) })).json()) as UpdatesStatus
    for (const r of [s, checked]) {
      expect(r).toMatchObject({ source: null, latest: null, error: { code: 'BAD_REPO', message: expect.stringContaining('the updateRepo setting') } })
    }
    expect(github.requests).toEqual([])
    expect(fake.transcript).toEqual([])
  })

  test.each([...HOSTILE, 'git@github.com:--upload-pack=evil/x', 'ext::sh -c touch% pwned', '/srv/git/widget.git'])(
    'an origin remote %o is reported, only `git remote get-url` ran',
    async (url) => {
      const fake = fakeOriginGit({ url, tags: ['v9.0.0'] })
      const t = await appWith({ git: fake })
      const s = await status(t)
      expect(s).toMatchObject({ source: null, error: { code: 'BAD_REPO', hint: expect.stringContaining('UPDATE_REPO') } })
      expect(s.error?.message).toMatch(/^the origin remote ".*" is not a repository on github\.com$/)
      expect(github.requests).toEqual([])
      expect(fake.transcript).toEqual(['git remote get-url origin'])
    },
  )

  test('a real checkout whose origin holds shell syntax: rejected, and no shell ran it', async () => {
    const dir = checkout('hostile-origin', 'git@github.com:acme/$(touch pwned).git')
    const t = await appWith({ git: createOriginGit(dir) })
    const s = await status(t)
    expect(s.error?.code).toBe('BAD_REPO')
    expect(existsSync(path.join(dir, 'pwned'))).toBe(false)
    expect(existsSync(path.join(process.cwd(), 'pwned'))).toBe(false)
    expect(github.requests).toEqual([])
  })

  test('no repository anywhere: a clear error saying what to set', async () => {
    const t = await appWith({ git: createOriginGit(checkout('no-origin')) })
    const s = await status(t)
    expect(s).toMatchObject({ source: null, error: { code: 'BAD_REPO', message: expect.stringContaining('has no origin remote'), hint: expect.stringContaining('UPDATE_REPO') } })
    expect(github.requests).toEqual([])
  })
})

describe('the checkout’s git (real repositories)', () => {
  test('origin URL, and the tags on origin from git ls-remote', async () => {
    const origin = path.join(work, 'origin.git')
    const src = checkout('tagged')
    for (const tag of ['v1.0.0', 'v1.1.0', 'nightly']) git(src, ['tag', tag])
    git(work, ['clone', '-q', '--bare', src, origin])
    const clone = path.join(work, 'clone')
    git(work, ['clone', '-q', origin, clone])
    const g = createOriginGit(clone)
    expect(await g.originUrl()).toBe(origin)
    expect((await g.remoteTags()).sort()).toEqual(['nightly', 'v1.0.0', 'v1.1.0'])
    expect(await createOriginGit(checkout('lonely')).originUrl()).toBeUndefined()
    expect(await createOriginGit(path.join(work, 'does-not-exist')).originUrl()).toBeUndefined()
    await expect(createOriginGit(checkout('lonely2')).remoteTags()).rejects.toThrow(/^git ls-remote --tags origin failed: fatal: 'origin' does not appear to be a git repository$/)
  })

  test('API unreachable: release tags come from git ls-remote of a real origin', async () => {
    const src = checkout('fallback-src')
    for (const tag of ['v1.4.0', 'v1.6.0', 'v2.0.0-rc.1']) git(src, ['tag', tag])
    const origin = path.join(work, 'fallback.git')
    git(work, ['clone', '-q', '--bare', src, origin])
    const clone = path.join(work, 'fallback-clone')
    git(work, ['clone', '-q', origin, clone])
    const t = await appWith({ env: { UPDATE_REPO: 'acme/widget' }, git: createOriginGit(clone) })
    github.respond('acme/widget', () => Response.error())
    const s = await status(t)
    expect(s).toMatchObject({ via: 'git', latest: { tag: 'v1.6.0', notesMarkdown: '' }, updateAvailable: true, error: { code: 'UPSTREAM_ERROR' } })
    const cache = JSON.parse(await readFile(t.services.upkeepPaths.releaseCache, 'utf8'))
    expect(cache.releases.map((r: { tag: string }) => r.tag)).toEqual(['v1.6.0', 'v1.4.0'])
  })
})
