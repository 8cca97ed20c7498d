import { mkdtemp, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { Readable } from 'node:stream'
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import { formatStatus, runServerCommand, type CliIo } from '../../server/cli'
import type { UpdatesStatus } from '../../server/services/updates'
import type { Env } from '../../updater/shared/config'
import { login } from '../support/auth'
import { fakeClock, MINUTE } from '../support/clock'
import { fakeOriginGit } from '../support/fake-origin-git'
import { githubRelease, setupGitHubMock } from '../support/msw'
import { createTestApp } from '../support/test-app'

// `upkeep status|check|set-password` run in this process, so msw stands in for GitHub.
// (test/cli.test.ts and test/build.test.ts run them as real processes.)

const clock = fakeClock()
const github = setupGitHubMock(clock)
let dataDir: string

beforeEach(async () => {
  clock.set('2026-11-23T10:00:00.000Z')
  dataDir = await mkdtemp(path.join(tmpdir(), 'upkeep-cli-'))
})
afterEach(() => rm(dataDir, { recursive: true, force: true }))

async function cli(name: string, args: string[], opts: { env?: Env; stdin?: string } = {}) {
  let stdout = ''
  let stderr = ''
  const io: CliIo = {
    env: { DATA_DIR: dataDir, UPDATE_REPO: 'acme/widget', ...opts.env },
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    stdin: Readable.from(opts.stdin === undefined ? [] : [opts.stdin]),
  }
  const code = await runServerCommand(name, args, io, { clock, git: fakeOriginGit() })
  return { code, stdout, stderr }
}

describe('upkeep status / check', () => {
  test('--json prints the same data as GET /api/updates', async () => {
    github.serveReleases('acme/widget', [githubRelease('v1.5.0'), githubRelease('v1.4.0')])
    const r = await cli('status', ['--json'])
    expect(r.code).toBe(0)
    expect(r.stderr).toBe('')
    const status = JSON.parse(r.stdout) as UpdatesStatus
    expect(Object.keys(status)).toEqual(['current', 'latest', 'releases', 'updateAvailable', 'checkedAt', 'nextCheckAt', 'source', 'channel', 'checksDisabled', 'checkEnabled', 'via', 'error', 'running'])
    expect(status).toMatchObject({ latest: { tag: 'v1.5.0' }, updateAvailable: true, source: { repo: 'acme/widget', from: 'env' }, checkedAt: '2026-11-23T10:00:00.000Z' })

    // The server over the same data dir answers the same, from the cache the CLI wrote.
    const t = await createTestApp({ clock, dataDir, env: { UPDATE_REPO: 'acme/widget' } })
    const api = await (await t.app.request('/api/updates', { headers: { cookie: await login(t.app) } })).json()
    // Only what depends on the running version differs (the CLI here is 0.0.0-dev).
    expect(api).toEqual({ ...status, current: api.current, releases: api.releases })
    expect(github.requests).toHaveLength(1)
  })

  test('status answers from the cache; check asks GitHub now', async () => {
    github.serveReleases('acme/widget', [githubRelease('v1.5.0')])
    await cli('status', [])
    clock.advance(5 * MINUTE)
    await cli('status', [])
    expect(github.requests).toHaveLength(1)
    const r = await cli('check', ['--json'])
    expect(r.code).toBe(0)
    expect(github.requests).toHaveLength(2)
    expect(JSON.parse(r.stdout).checkedAt).toBe('2026-11-23T10:05:00.000Z')
  })

  test('human output: short lines with the answer first', async () => {
    github.serveReleases('acme/widget', [githubRelease('v1.5.0')])
    const r = await cli('check', [])
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/^Running: +0\.0\.0-dev/)
    expect(r.stdout).toContain('Releases from: acme/widget (UPDATE_REPO), channel stable\n')
    expect(r.stdout).toContain('Latest:        1.5.0 "Widget 1.5.0", published 2026-11-20\n')
    expect(r.stdout).toContain('Update:        available: 0.0.0-dev → 1.5.0 (https://github.com/acme/widget/releases/tag/v1.5.0)\n')
    expect(r.stdout).toContain('Checked:       2026-11-23 10:00 UTC (just now); next check after 2026-11-23 10:30 UTC\n')
    // The update policy (the default: announce, install nothing) and why the release has not installed itself.
    expect(r.stdout).toContain('Policy:        notify only: new releases are announced, none installs itself\n')
    expect(r.stdout).toContain('Automatic:     notify only: 1.5.0 is available\n')
  })

  test('pause and resume: all apps, or one; an unknown app is named, nothing changes', async () => {
    expect(await cli('pause', [])).toEqual({ code: 0, stdout: 'Automatic updates of every app are paused; `upkeep resume` resumes them.\n', stderr: '' })
    github.serveReleases('acme/widget', [githubRelease('v1.5.0')])
    expect((await cli('status', [])).stdout).toContain('Automatic:     paused for all apps\n')
    expect(await cli('pause', ['--app', 'upkeep'])).toEqual({ code: 0, stdout: 'Automatic updates of upkeep are paused; `upkeep resume --app upkeep` resumes them.\n', stderr: '' })
    expect((await cli('resume', ['--app', 'upkeep'])).stdout).toBe('Automatic updates of upkeep are resumed; `upkeep pause --app upkeep` pauses them.\nThey stay paused for now: automatic updates of all apps are paused (`upkeep resume`).\n')
    expect((await cli('resume', [])).code).toBe(0)
    const settings = JSON.parse(await readFile(path.join(dataDir, 'settings.json'), 'utf8'))
    expect(settings).toMatchObject({ paused: false, apps: { upkeep: { policy: { paused: false, resumedAt: '2026-11-23T10:00:00.000Z' } } } })
    const unknown = await cli('pause', ['--app', 'nope'])
    expect(unknown.code).toBe(1)
    expect(unknown.stderr).toMatch(/^upkeep pause: .*nope/)
  })

  test('a failed check exits 1 and says why and what to do', async () => {
    github.respond('acme/widget', () => Response.json({ message: 'Not Found' }, { status: 404 }))
    const r = await cli('check', [])
    expect(r.code).toBe(1)
    expect(r.stdout).toContain('Problem:       repository acme/widget not found on api.github.com\n')
    expect(r.stdout).toMatch(/\n +hint: check the repository name; a private repository needs GITHUB_TOKEN\n$/)
    // `status` reports the same problem without failing.
    expect((await cli('status', [])).code).toBe(0)
  })

  test('UPDATE_CHECK_DISABLED=true: no request, and it says so', async () => {
    const r = await cli('check', [], { env: { UPDATE_CHECK_DISABLED: 'true' } })
    expect(r.code).toBe(0)
    expect(r.stdout).toContain('Checks:        disabled (UPDATE_CHECK_DISABLED=true); GitHub is never asked\n')
    expect(github.requests).toEqual([])
  })

  test('bad configuration exits 2 naming the variable; a bad option exits 2', async () => {
    const bad = await cli('status', [], { env: { UPDATE_REPO: '--upload-pack=evil/x' } })
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/^upkeep: invalid UPDATE_REPO: must be a GitHub repository owner\/name, got "--upload-pack=evil\/x"/)
    expect(github.requests).toEqual([])
    const opt = await cli('status', ['--jsno'])
    expect(opt.code).toBe(2)
    expect(opt.stderr).toContain("upkeep status: Unknown option '--jsno'")
    expect(opt.stderr).toContain('Usage: upkeep status [--json]')
  })
})

describe('upkeep set-password', () => {
  test('--password-stdin sets it (0600, hashed) and signs every session out', async () => {
    const t = await createTestApp({ clock, dataDir })
    const cookie = await login(t.app)
    const r = await cli('set-password', ['--password-stdin'], { stdin: 'correct horse battery\n' })
    expect(r).toEqual({ code: 0, stdout: 'Admin password changed. Every session is signed out; log in again with the new password.\n', stderr: '' })
    expect((await stat(path.join(dataDir, 'admin-password.json'))).mode & 0o777).toBe(0o600)
    expect((await t.app.request('/api/updates', { headers: { cookie } })).status).toBe(401)
    expect(await login(t.app, 'correct horse battery')).toMatch(/^upkeep_session=/)
  })

  test('a short password is refused and nothing changes', async () => {
    const r = await cli('set-password', ['--password-stdin'], { stdin: 'short\n' })
    expect(r.code).toBe(1)
    expect(r.stderr).toBe('upkeep set-password: the password is too short: at least 8 characters\n')
    await expect(stat(path.join(dataDir, 'admin-password.json'))).rejects.toThrow(/ENOENT/)
  })

  test('without a terminal and without --password-stdin it explains what to do', async () => {
    const r = await cli('set-password', [])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('stdin is not a terminal: pipe the password in with --password-stdin')
  })
})

test('formatStatus: errors, git fallback, disabled automatic checks', () => {
  const base: UpdatesStatus = {
    current: { version: '1.4.0', commit: 'abcdef0123' },
    latest: { version: '1.4.0', tag: 'v1.4.0', name: 'v1.4.0', notesMarkdown: '', url: 'https://github.com/a/b/releases/tag/v1.4.0', publishedAt: '', prerelease: false },
    updateAvailable: false,
    checkedAt: '2026-11-23T07:00:00.000Z',
    nextCheckAt: '2026-11-23T11:00:00.000Z',
    source: { repo: 'a/b', from: 'origin' },
    channel: 'stable',
    checksDisabled: false,
    checkEnabled: false,
    via: 'git',
    error: { code: 'RATE_LIMITED', message: 'GitHub rate limit reached', hint: 'wait' },
    releases: [],
    running: null,
  }
  expect(formatStatus(base, new Date('2026-11-23T10:00:00.000Z'))).toBe(
    [
      'Running:       1.4.0 (abcdef0)',
      'Releases from: a/b (git remote origin), channel stable',
      'Latest:        1.4.0 (from git tags)',
      'Update:        none, this is the latest',
      'Checks:        automatic checks are off (setting); `upkeep check` checks now',
      'Checked:       2026-11-23 07:00 UTC (3 h ago); next check after 2026-11-23 11:00 UTC',
      'Problem:       GitHub rate limit reached',
      '               hint: wait',
      '',
    ].join('\n'),
  )
})

test('formatStatus shows an update in progress', () => {
  const s: UpdatesStatus = {
    current: { version: '1.0.0', commit: 'unknown' },
    latest: null,
    releases: [],
    updateAvailable: false,
    checkedAt: null,
    nextCheckAt: null,
    source: null,
    channel: 'stable',
    checksDisabled: false,
    checkEnabled: true,
    via: null,
    error: null,
    running: { state: 'running', updateId: '20261123T182800Z-a1b2c3d4', from: '1.0.0', to: '1.1.0', startedAt: '2026-11-23T18:28:00.000Z' },
  }
  expect(formatStatus(s, new Date('2026-11-23T18:30:00.000Z'))).toContain('Updating: in progress: 1.0.0 → 1.1.0 (20261123T182800Z-a1b2c3d4)')
})

test('formatStatus says how the running release was installed', () => {
  const s: UpdatesStatus = {
    current: { version: '1.1.0', commit: 'unknown', installedFrom: { kind: 'artifact', signer: 'upkeep-release', fingerprint: 'SHA256:ulkKt2KmCzXq3ZLEZ+BzOFXzc2C1gZ8JmdaVxGqHXlE' } },
    latest: null,
    releases: [],
    updateAvailable: false,
    checkedAt: null,
    nextCheckAt: null,
    source: null,
    channel: 'stable',
    checksDisabled: false,
    checkEnabled: true,
    via: null,
    error: null,
    running: null,
  }
  expect(formatStatus(s, new Date('2026-11-23T18:30:00.000Z'))).toMatch(/^Installed from: +artifact, verified by upkeep-release \(SHA256:ulkKt2Km…\)$/m)
  s.current.installedFrom = { kind: 'source', tag: { signed: false }, dependencies: 'reused' }
  expect(formatStatus(s, new Date('2026-11-23T18:30:00.000Z'))).toMatch(/^Installed from: +source, tag unsigned, dependencies reused$/m)
})
