import { mkdir, readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { Writable } from 'node:stream'
import { pino } from 'pino'
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import type { UpdatesStatus } from '../../server/services/updates'
import type { ReleaseCache } from '../../updater/shared/release-cache'
import { adminHeaders, login } from '../support/auth'
import { fakeClock, MINUTE, type FakeClock } from '../support/clock'
import { fakeOriginGit } from '../support/fake-origin-git'
import { http, HttpResponse } from 'msw'
import { githubHeaders, githubRelease, notFoundResponse, rateLimitedResponse, secondaryRateLimitResponse, setupGitHubMock } from '../support/msw'
import { createTestApp, type TestApp, type TestAppOptions } from '../support/test-app'

const clock: FakeClock = fakeClock()
const github = setupGitHubMock(clock)
const REPO = 'acme/widget'

let t: TestApp
let cookie: string
const started: TestApp[] = []

/** Another server over its own new data dir. */
async function another(opts: TestAppOptions = {}): Promise<TestApp> {
  const app = await createTestApp({ clock, ...opts, env: { UPDATE_REPO: REPO, ...opts.env } })
  started.push(app)
  return app
}

/** A server process started again: new services and app over the same data dir, nothing in memory. */
const restart = () => createTestApp({ clock, env: { UPDATE_REPO: REPO }, dataDir: t.dataDir })

async function getUpdates(app = t): Promise<UpdatesStatus> {
  const res = await app.app.request('/api/updates', { headers: { cookie } })
  expect(res.status).toBe(200)
  return (await res.json()) as UpdatesStatus
}

async function check(app = t): Promise<UpdatesStatus> {
  const res = await app.app.request('/api/updates/check', { method: 'POST', headers: adminHeaders(cookie) })
  expect(res.status).toBe(200)
  return (await res.json()) as UpdatesStatus
}

const readCache = async (app = t) => JSON.parse(await readFile(path.join(app.dataDir, 'release-cache.json'), 'utf8')) as ReleaseCache

beforeEach(async () => {
  clock.set('2026-11-23T10:00:00.000Z')
  t = await createTestApp({ clock, env: { UPDATE_REPO: REPO } })
  started.push(t)
  cookie = await login(t.app)
})
afterEach(async () => {
  for (const app of started.splice(0)) await app.cleanup()
})

describe('GET /api/updates', () => {
  test('answers the running version, the latest release and where it came from', async () => {
    github.serveReleases(REPO, [githubRelease('v1.5.0'), githubRelease('v1.4.0', { publishedAt: '2026-10-01T08:00:00Z' })], {
      link: '<https://api.github.com/repositories/708642/releases?per_page=100&page=2>; rel="next", <https://api.github.com/repositories/708642/releases?per_page=100&page=3>; rel="last"',
    })
    const status = await getUpdates()
    expect(status).toEqual({
      current: { version: '1.4.0', commit: 'abc1234' },
      latest: {
        version: '1.5.0',
        tag: 'v1.5.0',
        name: 'Widget 1.5.0',
        notesMarkdown: expect.stringContaining("## What's changed"),
        url: 'https://github.com/acme/widget/releases/tag/v1.5.0',
        publishedAt: '2026-11-20T09:30:00Z',
        prerelease: false,
      },
      // Installable: newer than 1.4.0 (the running one is not offered).
      releases: [expect.objectContaining({ version: '1.5.0', tag: 'v1.5.0' })],
      updateAvailable: true,
      checkedAt: '2026-11-23T10:00:00.000Z',
      nextCheckAt: '2026-11-23T10:30:00.000Z',
      source: { repo: 'acme/widget', from: 'env' },
      channel: 'stable',
      checksDisabled: false,
      checkEnabled: true,
      via: 'api',
      error: null,
      running: null,
    })
  })

  test('sends the headers GitHub asks for, and the token as a Bearer when set', async () => {
    const a = await another({ env: { UPDATE_REPO: REPO, GITHUB_TOKEN: 'ghp_testtoken123' } })
    const c = await login(a.app)
    github.serveReleases(REPO, [githubRelease('v1.5.0')])
    const res = await a.app.request('/api/updates', { headers: { cookie: c } })
    expect(res.status).toBe(200)
    expect(github.requests).toHaveLength(1)
    const req = github.requests[0]!
    expect(req.url).toBe('https://api.github.com/repos/acme/widget/releases?per_page=100')
    expect(req.headers.get('accept')).toBe('application/vnd.github+json')
    expect(req.headers.get('x-github-api-version')).toBe('2022-11-28')
    expect(req.headers.get('user-agent')).toBe('upkeep/1.4.0')
    expect(req.headers.get('authorization')).toBe('Bearer ghp_testtoken123')

    await getUpdates() // the app without a token
    expect(github.requests[1]!.headers.has('authorization')).toBe(false)
  })
})

describe('GitHub Enterprise', () => {
  test('GITHUB_API_URL with a path: the origin on that host is the source, the API under that path is asked', async () => {
    const git = fakeOriginGit({ url: 'git@ghe.example.com:platform/widget.git' })
    const ghe = await another({ env: { GITHUB_API_URL: 'https://ghe.example.com/api/v3', UPDATE_REPO: undefined }, git })
    const c = await login(ghe.app)
    github.use(
      http.get('https://ghe.example.com/api/v3/repos/platform/widget/releases', ({ request }) => {
        github.requests.push({ method: request.method, url: request.url, headers: request.headers })
        return HttpResponse.json([githubRelease('v2.1.0', { repo: 'platform/widget', html_url: 'https://ghe.example.com/platform/widget/releases/tag/v2.1.0' })], {
          headers: githubHeaders({ rate: github.rate, etag: '"ghe"' }),
        })
      }),
    )
    const status = (await (await ghe.app.request('/api/updates', { headers: { cookie: c } })).json()) as UpdatesStatus
    expect(status.source).toEqual({ repo: 'platform/widget', from: 'origin' })
    expect(status.latest?.url).toBe('https://ghe.example.com/platform/widget/releases/tag/v2.1.0')
    expect(github.requests.map((r) => r.url)).toEqual(['https://ghe.example.com/api/v3/repos/platform/widget/releases?per_page=100'])
  })
})

describe('must show 1: the 30-minute cache', () => {
  test('two reads 10 minutes apart make one request; after 31 minutes a conditional request, and a 304 changes only checkedAt', async () => {
    github.serveReleases(REPO, [githubRelease('v1.5.0')], { etag: 'W/"etag-1"', lastModified: 'Fri, 20 Nov 2026 09:30:00 GMT' })
    const first = await getUpdates()
    expect(github.requests).toHaveLength(1)
    expect(github.requests[0]!.headers.has('if-none-match')).toBe(false)
    const cached = await readCache()

    clock.advance(10 * MINUTE)
    const second = await getUpdates()
    expect(github.requests).toHaveLength(1)
    expect(second).toEqual(first)

    clock.advance(21 * MINUTE)
    const third = await getUpdates()
    expect(github.requests).toHaveLength(2)
    expect(github.requests[1]!.headers.get('if-none-match')).toBe('W/"etag-1"')
    expect(github.requests[1]!.headers.get('if-modified-since')).toBe('Fri, 20 Nov 2026 09:30:00 GMT')
    expect(third.checkedAt).toBe('2026-11-23T10:31:00.000Z')
    expect({ ...third, checkedAt: first.checkedAt, nextCheckAt: first.nextCheckAt }).toEqual(first)
    expect(await readCache()).toEqual({ ...cached, checkedAt: '2026-11-23T10:31:00.000Z' })
  })

  test('the cache survives a server restart: no request while fresh, the stored validator afterwards', async () => {
    github.serveReleases(REPO, [githubRelease('v1.5.0')], { etag: '"etag-2"' })
    const before = await getUpdates()
    expect(github.requests).toHaveLength(1)

    clock.advance(20 * MINUTE)
    const restarted = await restart()
    const after = await getUpdates(restarted)
    expect(github.requests).toHaveLength(1)
    expect(after.latest).toEqual(before.latest)
    expect(after.checkedAt).toBe(before.checkedAt)

    clock.advance(11 * MINUTE)
    const again = await restart()
    await getUpdates(again)
    expect(github.requests).toHaveLength(2)
    expect(github.requests[1]!.headers.get('if-none-match')).toBe('"etag-2"')
  })

  test('a new release shows up after the cache expires', async () => {
    github.serveReleases(REPO, [githubRelease('v1.5.0')])
    expect((await getUpdates()).latest?.tag).toBe('v1.5.0')
    github.serveReleases(REPO, [githubRelease('v1.6.0'), githubRelease('v1.5.0')])
    clock.advance(29 * MINUTE)
    expect((await getUpdates()).latest?.tag).toBe('v1.5.0')
    clock.advance(2 * MINUTE)
    expect((await getUpdates()).latest?.tag).toBe('v1.6.0')
  })

  test('POST /api/updates/check asks now, conditionally', async () => {
    github.serveReleases(REPO, [githubRelease('v1.5.0')], { etag: '"e3"' })
    await getUpdates()
    clock.advance(1 * MINUTE)
    const checked = await check()
    expect(github.requests).toHaveLength(2)
    expect(github.requests[1]!.headers.get('if-none-match')).toBe('"e3"')
    expect(checked.checkedAt).toBe('2026-11-23T10:01:00.000Z')
  })
})

describe('must show 2: which release is the update', () => {
  const payload = () => [
    githubRelease('v9.0.0', { draft: true }),
    githubRelease('v2.0.0-rc.1', { prerelease: true }),
    githubRelease('v3.0.0-beta.2'), // semver prerelease, not marked as one on GitHub
    githubRelease('v5.0.0', { prerelease: true }),
    githubRelease('latest'),
    githubRelease('v1.11'),
    githubRelease('2.0.0'),
    githubRelease('release-2026-11'),
    githubRelease('v01.2.3'),
    githubRelease('v1.9.9', { publishedAt: '2026-11-22T12:00:00Z' }), // newer by date
    githubRelease('v1.10.0', { publishedAt: '2026-11-01T12:00:00Z' }),
    githubRelease('v1.3.0', { publishedAt: '2026-09-01T12:00:00Z' }),
  ]

  test('drafts, prereleases on stable and non-semver tags never appear; v1.10.0 beats v1.9.9', async () => {
    github.serveReleases(REPO, payload())
    const status = await getUpdates()
    expect(status.latest?.tag).toBe('v1.10.0')
    expect(status.updateAvailable).toBe(true)
    expect((await readCache()).releases.map((r) => r.tag)).toEqual(['v1.10.0', 'v1.9.9', 'v1.3.0'])
  })

  test('the prerelease channel offers prereleases, never drafts', async () => {
    await t.services.settings.update({ channel: 'prerelease' })
    github.serveReleases(REPO, payload())
    const status = await getUpdates()
    expect(status.channel).toBe('prerelease')
    expect(status.latest).toMatchObject({ tag: 'v5.0.0', prerelease: true })
    expect((await readCache()).releases.map((r) => r.tag)).toEqual(['v5.0.0', 'v3.0.0-beta.2', 'v2.0.0-rc.1', 'v1.10.0', 'v1.9.9', 'v1.3.0'])
  })

  test('a release lower than (or equal to) the running version is not an update', async () => {
    const newer = await another({ build: { version: '1.11.0', commit: 'def' } })
    const c = await login(newer.app)
    github.serveReleases(REPO, payload())
    const res = await newer.app.request('/api/updates', { headers: { cookie: c } })
    const status = (await res.json()) as UpdatesStatus
    expect(status.latest?.tag).toBe('v1.10.0')
    expect(status.updateAvailable).toBe(false)

    const same = await another({ build: { version: '1.10.0', commit: 'def' } })
    const c2 = await login(same.app)
    expect(((await (await same.app.request('/api/updates', { headers: { cookie: c2 } })).json()) as UpdatesStatus).updateAvailable).toBe(false)
  })

  test('a repository without usable releases says so', async () => {
    github.serveReleases(REPO, [githubRelease('v2.0.0', { draft: true }), githubRelease('nightly')])
    const status = await getUpdates()
    expect(status).toMatchObject({ latest: null, updateAvailable: false, error: null, via: 'api' })
  })
})

describe('must show 4: rate limits and coalescing', () => {
  test('after x-ratelimit-remaining: 0, no request until the reset, and the UI is told when', async () => {
    github.rate.remaining = 1
    github.rate.reset = Math.floor(clock.now().getTime() / 1000) + 45 * 60
    github.serveReleases(REPO, [githubRelease('v1.5.0')])
    const first = await getUpdates()
    expect(github.requests).toHaveLength(1)
    expect(github.rate.remaining).toBe(0)
    expect(first.latest?.tag).toBe('v1.5.0')

    clock.advance(31 * MINUTE)
    const limited = await getUpdates()
    const forced = await check()
    expect(github.requests).toHaveLength(1)
    expect(limited.nextCheckAt).toBe('2026-11-23T10:45:00.000Z')
    expect(forced.error).toMatchObject({ code: 'RATE_LIMITED', message: expect.stringContaining('2026-11-23T10:45:00.000Z') })
    expect(forced.latest?.tag).toBe('v1.5.0')

    // The limit is on disk: a restarted server does not ask either.
    const restarted = await restart()
    await getUpdates(restarted)
    expect(github.requests).toHaveLength(1)

    clock.set('2026-11-23T10:45:01.000Z')
    github.rate.remaining = 60
    const after = await getUpdates()
    expect(github.requests).toHaveLength(2)
    expect(after.error).toBeNull()
  })

  test('a 403 rate-limit answer stops requests until x-ratelimit-reset', async () => {
    github.respond(REPO, () => rateLimitedResponse({ ...github.rate, reset: Math.floor(clock.now().getTime() / 1000) + 600 }))
    const status = await getUpdates()
    expect(status.error).toMatchObject({ code: 'RATE_LIMITED' })
    expect(status.nextCheckAt).toBe('2026-11-23T10:10:00.000Z')
    clock.advance(9 * MINUTE)
    await check()
    await getUpdates()
    expect(github.requests).toHaveLength(1)
    clock.advance(2 * MINUTE)
    github.serveReleases(REPO, [githubRelease('v1.5.0')])
    expect((await check()).latest?.tag).toBe('v1.5.0')
    expect(github.requests).toHaveLength(2)
  })

  test.each([429, 403] as const)('retry-after on a %i is honoured', async (status) => {
    github.respond(REPO, () => secondaryRateLimitResponse(github.rate, 120, status))
    const first = await check()
    expect(first.error).toMatchObject({ code: 'RATE_LIMITED' })
    expect(first.nextCheckAt).toBe('2026-11-23T10:02:00.000Z')
    clock.advance(119_000)
    await check()
    expect(github.requests).toHaveLength(1)
    clock.advance(2000)
    await check()
    expect(github.requests).toHaveLength(2)
  })

  test('after a short retry-after, the automatic check comes right after it', async () => {
    github.respond(REPO, () => secondaryRateLimitResponse(github.rate, 60))
    expect((await getUpdates()).nextCheckAt).toBe('2026-11-23T10:01:00.000Z')
    clock.advance(61_000)
    github.serveReleases(REPO, [githubRelease('v1.5.0')])
    const status = await getUpdates()
    expect(github.requests).toHaveLength(2)
    expect(status).toMatchObject({ latest: { tag: 'v1.5.0' }, error: null })
  })

  test('100 concurrent POST /api/updates/check make one upstream request', async () => {
    let release!: () => void
    const hold = new Promise<void>((r) => (release = r))
    github.serveReleases(REPO, [githubRelease('v1.5.0')], { hold })
    const answers = Array.from({ length: 100 }, () => t.app.request('/api/updates/check', { method: 'POST', headers: adminHeaders(cookie) }))
    // Hold GitHub's answer until every request had the chance to start its own.
    await new Promise((r) => setTimeout(r, 300))
    release()
    const responses = await Promise.all(answers)
    expect(responses.map((r) => r.status)).toEqual(Array(100).fill(200))
    const bodies = (await Promise.all(responses.map((r) => r.json()))) as UpdatesStatus[]
    expect(new Set(bodies.map((b) => b.latest?.tag))).toEqual(new Set(['v1.5.0']))
    expect(github.requests).toHaveLength(1)
  })
})

describe('must show 6: UPDATE_CHECK_DISABLED', () => {
  test('zero upstream requests, and the status says checks are disabled', async () => {
    const git = fakeOriginGit({ tags: ['v9.9.9'] })
    const off = await another({ env: { UPDATE_REPO: REPO, UPDATE_CHECK_DISABLED: 'true' }, git })
    const c = await login(off.app)
    github.serveReleases(REPO, [githubRelease('v1.5.0')])
    const got = (await (await off.app.request('/api/updates', { headers: { cookie: c } })).json()) as UpdatesStatus
    const checked = (await (await off.app.request('/api/updates/check', { method: 'POST', headers: adminHeaders(c) })).json()) as UpdatesStatus
    clock.advance(24 * 60 * MINUTE)
    await off.app.request('/api/updates', { headers: { cookie: c } })
    expect(github.requests).toEqual([])
    expect(git.transcript).toEqual([])
    for (const s of [got, checked]) {
      expect(s).toMatchObject({ checksDisabled: true, latest: null, nextCheckAt: null, error: null, source: { repo: REPO, from: 'env' } })
    }
  })

  test('the checkEnabled setting stops automatic checks but not an explicit one', async () => {
    await t.services.settings.update({ checkEnabled: false })
    github.serveReleases(REPO, [githubRelease('v1.5.0')])
    expect(await getUpdates()).toMatchObject({ checkEnabled: false, latest: null, nextCheckAt: null })
    expect(github.requests).toHaveLength(0)
    expect((await check()).latest?.tag).toBe('v1.5.0')
    expect(github.requests).toHaveLength(1)
  })
})

describe('GitHub failing', () => {
  test('a 5xx keeps the last good result and reports the error; automatic retries wait 5 minutes', async () => {
    github.serveReleases(REPO, [githubRelease('v1.5.0')])
    await getUpdates()
    clock.advance(31 * MINUTE)
    github.respond(REPO, () => new Response('{"message":"Server Error"}', { status: 502, statusText: 'Bad Gateway' }))
    const failed = await getUpdates()
    expect(failed.latest?.tag).toBe('v1.5.0')
    expect(failed.checkedAt).toBe('2026-11-23T10:00:00.000Z')
    expect(failed.error).toMatchObject({ code: 'UPSTREAM_ERROR', message: 'GitHub answered 502 Bad Gateway' })
    expect(failed.nextCheckAt).toBe('2026-11-23T10:36:00.000Z')
    clock.advance(4 * MINUTE)
    expect((await getUpdates()).error?.code).toBe('UPSTREAM_ERROR')
    expect(github.requests).toHaveLength(2)
    // The failure is on disk beside the kept result.
    expect((await readCache()).lastError).toMatchObject({ code: 'UPSTREAM_ERROR', at: '2026-11-23T10:31:00.000Z' })

    clock.advance(2 * MINUTE)
    github.serveReleases(REPO, [githubRelease('v1.5.0')])
    const healed = await getUpdates()
    expect(healed.error).toBeNull()
    expect((await readCache()).lastError).toBeUndefined()
  })

  test('a network error keeps the last good result', async () => {
    github.serveReleases(REPO, [githubRelease('v1.5.0')])
    await getUpdates()
    github.respond(REPO, () => Response.error())
    const failed = await check()
    expect(failed.latest?.tag).toBe('v1.5.0')
    expect(failed.error).toMatchObject({ code: 'UPSTREAM_ERROR', message: expect.stringContaining('cannot reach api.github.com') })
  })

  test('with the API unreachable and nothing cached, git ls-remote on origin lists the tags', async () => {
    const git = fakeOriginGit({ tags: ['v1.3.0', 'v1.6.0', 'v1.7.0-rc.1', 'nightly', 'v1.10.0'] })
    const a = await another({ git })
    const c = await login(a.app)
    github.respond(REPO, () => new Response(null, { status: 503, statusText: 'Service Unavailable' }))
    const status = (await (await a.app.request('/api/updates', { headers: { cookie: c } })).json()) as UpdatesStatus
    expect(git.transcript).toEqual(['git ls-remote --tags --refs origin'])
    expect(status).toMatchObject({
      via: 'git',
      updateAvailable: true,
      latest: { tag: 'v1.10.0', version: '1.10.0', notesMarkdown: '', url: 'https://github.com/acme/widget/releases/tag/v1.10.0', prerelease: false },
      error: { code: 'UPSTREAM_ERROR', message: expect.stringContaining('git ls-remote') },
    })
    expect((await readCache(a)).releases.map((r) => r.tag)).toEqual(['v1.10.0', 'v1.6.0', 'v1.3.0'])
  })

  test('a malformed reply is an error that loses nothing', async () => {
    github.serveReleases(REPO, [githubRelease('v1.5.0')])
    await getUpdates()
    const before = await readCache()
    github.respond(REPO, () => new Response('{"releases": "soon"}', { headers: { 'content-type': 'application/json; charset=utf-8' } }))
    const failed = await check()
    expect(failed.error).toMatchObject({ code: 'UPSTREAM_ERROR', message: 'GitHub answered with something that is not a release list' })
    expect(failed.latest?.tag).toBe('v1.5.0')
    expect((await readCache()).releases).toEqual(before.releases)
  })

  test('items that are not shaped like releases are skipped', async () => {
    github.respond(REPO, () =>
      Response.json([{ tag_name: 'v3.0.0' }, null, 'v4.0.0', { ...githubRelease('v2.0.0'), draft: 'no' }, githubRelease('v1.5.0')]),
    )
    expect((await getUpdates()).latest?.tag).toBe('v1.5.0')
  })

  test('an unknown repository is a BAD_REPO error naming it', async () => {
    github.respond(REPO, () => notFoundResponse(github.rate))
    const status = await getUpdates()
    expect(status.error).toMatchObject({ code: 'BAD_REPO', message: 'repository acme/widget not found on api.github.com', hint: expect.stringContaining('GITHUB_TOKEN') })
  })

  test('a cache that cannot be written still answers, and says so in the log', async () => {
    const lines: { msg: string; file?: string }[] = []
    const log = pino({ level: 'info' }, new Writable({ write: (chunk, _enc, done) => done(void lines.push(JSON.parse(String(chunk)))) }))
    const a = await another({ log })
    const c = await login(a.app)
    // A directory where the file should be: the atomic rename over it fails, as on a full or read-only disk.
    await mkdir(path.join(a.dataDir, 'release-cache.json', 'blocker'), { recursive: true })
    github.serveReleases(REPO, [githubRelease('v1.5.0')])
    const res = await a.app.request('/api/updates', { headers: { cookie: c } })
    expect(res.status).toBe(200)
    expect(await res.json()).toMatchObject({ latest: { tag: 'v1.5.0' }, error: null })
    expect(lines.filter((l) => l.msg === 'cannot write the release cache').map((l) => l.file)).toEqual([path.join(a.dataDir, 'release-cache.json')])
  })

  test('a corrupt cache file is ignored and replaced', async () => {
    await writeFile(path.join(t.dataDir, 'release-cache.json'), '{"repo": "acme/wid')
    github.serveReleases(REPO, [githubRelease('v1.5.0')])
    expect((await getUpdates()).latest?.tag).toBe('v1.5.0')
    expect((await readCache()).repo).toBe(REPO)
  })

  test('a cache whose latest is not a release tag: apply refuses it, and a check asks GitHub afresh (no 304 keeps it)', async () => {
    github.serveReleases(REPO, [githubRelease('v1.5.0')], { etag: 'W/"same"' })
    const tampered = { repo: REPO, channel: 'stable', checkedAt: clock.now().toISOString(), etag: 'W/"same"', via: 'api', releases: [], latest: { tag: 'v1.0.0 --upload-pack=x', version: '1.0.0' } }
    await writeFile(path.join(t.dataDir, 'release-cache.json'), JSON.stringify(tampered))
    const apply = () => t.app.request('/api/updates/apply', { method: 'POST', headers: adminHeaders(cookie), body: '{}' })
    const refused = await apply()
    expect(refused.status).toBe(409)
    expect(await refused.json()).toMatchObject({ error: { code: 'NO_RELEASE', hint: expect.stringContaining('Check for updates') } })
    expect((await check()).latest?.tag).toBe('v1.5.0')
    expect(github.requests.map((r) => r.headers.get('if-none-match'))).toEqual([null])
    expect((await apply()).status).toBe(202)
    expect(JSON.parse(await readFile(path.join(t.dataDir, 'update-request.json'), 'utf8'))).toMatchObject({ version: 'v1.5.0' })
  })
})

describe('release-cache.json', () => {
  test('follows the ReleaseCache contract the updater reads', async () => {
    github.serveReleases(REPO, [githubRelease('v1.5.0'), githubRelease('v1.4.0')], { etag: 'W/"c"', lastModified: 'Fri, 20 Nov 2026 09:30:00 GMT' })
    await getUpdates()
    const cache = await readCache()
    expect(cache).toEqual({
      repo: REPO,
      channel: 'stable',
      checkedAt: '2026-11-23T10:00:00.000Z',
      etag: 'W/"c"',
      lastModified: 'Fri, 20 Nov 2026 09:30:00 GMT',
      latest: expect.objectContaining({ tag: 'v1.5.0', version: '1.5.0' }),
      releases: [expect.objectContaining({ tag: 'v1.5.0' }), expect.objectContaining({ tag: 'v1.4.0' })],
      via: 'api',
    })
  })
})
