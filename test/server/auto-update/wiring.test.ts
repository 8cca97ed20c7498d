import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { Readable } from 'node:stream'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { runServerCommand, type CliIo } from '../../../server/cli'
import type { AutoUpdateView } from '../../../server/services/auto-update/service'
import { appendHistory, type HistoryEntry } from '../../../updater/shared/history'
import { writeInstalled } from '../../../updater/shared/installed'
import { takeUpdateRequest } from '../../../updater/shared/request'
import { adminHeaders, login } from '../../support/auth'
import { fakeClock } from '../../support/clock'
import { fakeOriginGit } from '../../support/fake-origin-git'
import { githubRelease, setupGitHubMock, type GitHubRelease } from '../../support/msw'
import { createTestApp, type TestApp } from '../../support/test-app'

// Must show 1 (and 4) through the wiring, with a controllable clock: the policy is saved through
// the API into the settings file, releases come from "GitHub" (msw) through the app's release
// source, a tick of the server's scheduler writes the app's request file (trigger auto) the way
// "Update now" does, and this test plays the updater: it takes the request and records the end
// in the app's history and installed version. Pause and resume go through `upkeep pause/resume`.

const clock = fakeClock('2026-12-01T10:00:00.000Z')
const github = setupGitHubMock(clock)
const REPO = 'acme/widget'

let root: string
let t: TestApp
let cookie: string
let releases: GitHubRelease[] = []

const release = (version: string, publishedAt: string) => githubRelease(`v${version}`, { repo: REPO, publishedAt })
function publish(...r: GitHubRelease[]) {
  releases = [...r, ...releases]
  github.serveReleases(REPO, releases)
}

const env = () => ({ DATA_DIR: t.dataDir, UPKEEP_APPS_DIR: path.join(root, 'apps') })
const widget = () => t.services.apps.get('widget')

async function view(): Promise<AutoUpdateView> {
  const res = await t.app.request('/api/apps/widget/policy', { headers: { cookie } })
  expect(res.status).toBe(200)
  return (await res.json()) as AutoUpdateView
}

async function savePolicy(policy: Record<string, unknown>): Promise<AutoUpdateView> {
  const res = await t.app.request('/api/apps/widget/policy', { method: 'PUT', headers: adminHeaders(cookie), body: JSON.stringify({ policy }) })
  expect(res.status, await res.clone().text()).toBe(200)
  return (await res.json()) as AutoUpdateView
}

/** Moves the clock and lets the scheduler evaluate once; returns the request it wrote, if any. */
async function tickAt(iso: string) {
  clock.set(iso)
  await t.services.autoUpdate.tick()
  const taken = await takeUpdateRequest((await widget()).paths.request)
  if (taken && !taken.ok) throw taken.error
  return taken?.request
}

/** The updater's part: the requested update ended with `status`. */
async function finish(request: { updateId: string; version?: string }, status: HistoryEntry['status'], from: string) {
  const { paths } = await widget()
  const to = request.version!.slice(1)
  const at = clock.now().toISOString()
  await appendHistory(paths.history, { id: request.updateId, app: 'widget', kind: 'update', trigger: 'auto', from: { version: from }, to: { version: to, tag: request.version! }, status, startedAt: at, finishedAt: at, durationMs: 1, steps: [] })
  if (status === 'complete') await writeInstalled(paths.installed, { version: to, tag: request.version!, at })
}

async function cli(name: string, args: string[]) {
  let stdout = ''
  let stderr = ''
  const io: CliIo = { env: env(), stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) }, stdin: Readable.from([]) }
  const code = await runServerCommand(name, args, io, { clock, git: fakeOriginGit() })
  return { code, stdout, stderr }
}

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'upkeep-auto-wiring-'))
  await mkdir(path.join(root, 'apps'))
  const definition = { name: 'widget', checkout: path.join(root, 'widget'), source: { github: REPO }, run: { units: ['widget.service'] }, health: { url: 'http://127.0.0.1:9/health' } }
  await writeFile(path.join(root, 'apps', 'widget.json'), JSON.stringify(definition), { mode: 0o644 })
  t = await createTestApp({ clock, dataDir: path.join(root, 'data'), env: { UPKEEP_APPS_DIR: path.join(root, 'apps') } })
  cookie = await login(t.app)
  await writeInstalled((await widget()).paths.installed, { version: '1.2.0', tag: 'v1.2.0', at: clock.now().toISOString() })
})
afterAll(async () => {
  await t?.cleanup()
  await rm(root, { recursive: true, force: true })
})

describe('unattended updates through the server (controllable clock)', () => {
  test('must show 1: minimum age, then the window; a patch policy never takes a minor; pause holds everything until resume', async () => {
    publish(release('1.2.0', '2026-11-01T00:00:00Z'))
    const saved = await savePolicy({ mode: 'patch', minReleaseAgeHours: 24, window: { calendar: '*-*-* 03:00 Europe/Berlin', durationMinutes: 120 } })
    expect(saved.policy).toMatchObject({ mode: 'patch', minReleaseAgeHours: 24, paused: false })
    expect(saved.decision.reason).toEqual({ code: 'up-to-date', text: 'up to date' })
    // Stored in Upkeep's settings, readable by the server's user only (webhook secrets live there too).
    const stored = JSON.parse(await readFile(path.join(t.dataDir, 'settings.json'), 'utf8'))
    expect(stored.apps.widget.policy.mode).toBe('patch')

    // 1.2.1 appears at 10:30; at 11:00 (after the 30 minute release cache) it is known, and too young.
    publish(release('1.2.1', '2026-12-01T10:30:00Z'))
    expect(await tickAt('2026-12-01T11:00:00Z')).toBeUndefined()
    let v = await view()
    expect(v.decision).toMatchObject({ action: 'wait', release: { version: '1.2.1' }, reason: { code: 'too-new', text: 'release is 30 min old, minimum 24 h' }, notBefore: '2026-12-03T02:00:00.000Z' })

    // The window opens (03:00 Berlin = 02:00 UTC) while it is only 16 h old: nothing.
    expect(await tickAt('2026-12-02T02:30:00Z')).toBeUndefined()
    // Old enough at noon, but the window is closed.
    expect(await tickAt('2026-12-02T12:00:00Z')).toBeUndefined()
    expect((await view()).decision.reason).toEqual({ code: 'window', text: 'waiting for window at 03:00 (Europe/Berlin)' })

    // The next window: requested like "Update now", marked as the scheduler's.
    const first = await tickAt('2026-12-03T02:00:30Z')
    expect(first).toMatchObject({ version: 'v1.2.1', backup: true, trigger: 'auto' })
    await finish(first!, 'complete', '1.2.0')

    // A minor release under a patch policy: never installed, and the reason says so.
    publish(release('1.3.0', '2026-12-03T00:00:00Z'))
    expect(await tickAt('2026-12-04T02:30:00Z')).toBeUndefined()
    v = await view()
    expect(v.runningVersion).toBe('1.2.1')
    expect(v.decision.reason).toEqual({ code: 'policy', text: 'patch policy does not take minor release 1.3.0' })
    // `upkeep status` says the same: the policy, the next window, and why 1.3.0 waits.
    const status = await cli('status', ['--app', 'widget'])
    expect(status.code).toBe(0)
    expect(status.stdout).toContain('Update:        available: 1.2.1 → 1.3.0 (https://github.com/acme/widget/releases/tag/v1.3.0)\n')
    expect(status.stdout).toContain('Policy:        patch releases install themselves; at least 24 h after release\n')
    expect(status.stdout).toContain('Window:        *-*-* 03:00 Europe/Berlin for 120 min; next opens 2026-12-05 02:00 UTC (in 24 h)\n')
    expect(status.stdout).toContain('Automatic:     patch policy does not take minor release 1.3.0\n')

    // A patch release, and everything paused from the command line: nothing installs, in the window or not.
    publish(release('1.2.2', '2026-12-04T00:30:00Z'))
    const paused = await cli('pause', [])
    expect(paused).toEqual({ code: 0, stdout: 'Automatic updates of every app are paused; `upkeep resume` resumes them.\n', stderr: '' })
    expect(await tickAt('2026-12-05T02:05:00Z')).toBeUndefined()
    expect((await view()).decision.reason).toEqual({ code: 'paused-all', text: 'paused for all apps' })
    const pausedStatus = (await cli('status', ['--app', 'widget'])).stdout
    expect(pausedStatus).toContain('Paused:        paused for all apps (`upkeep resume`)\n')
    expect(pausedStatus).toContain('Automatic:     paused for all apps\n')

    // The app's own switch, from the CLI too; resuming all does not lift it.
    expect((await cli('pause', ['--app', 'widget'])).code).toBe(0)
    const resumedAll = await cli('resume', [])
    expect(resumedAll.stdout).toBe('Automatic updates of every app are resumed; `upkeep pause` pauses them.\nStill paused on their own: widget (`upkeep resume --app NAME`).\n')
    expect(await tickAt('2026-12-05T02:10:00Z')).toBeUndefined()
    expect((await view()).decision.reason).toEqual({ code: 'paused', text: 'paused' })

    // Resumed: still inside the window, so it installs now.
    expect((await cli('resume', ['--app', 'widget'])).code).toBe(0)
    const second = await tickAt('2026-12-05T02:15:00Z')
    expect(second).toMatchObject({ version: 'v1.2.2', trigger: 'auto' })
    // The resume is recorded: automatic failures before it no longer count toward the circuit breaker.
    expect((await view()).policy.resumedAt).toBe('2026-12-05T02:10:00.000Z')
  })

  test('must show 4: after a rollback the same release is not tried again by itself; a newer one is', async () => {
    github.serveReleases(REPO, releases)
    // The 1.2.2 update requested above was rolled back by the updater.
    const { paths } = await widget()
    const at = clock.now().toISOString()
    await appendHistory(paths.history, { id: '20261205T021500Z-0000abcd', app: 'widget', kind: 'update', trigger: 'auto', from: { version: '1.2.1' }, to: { version: '1.2.2', tag: 'v1.2.2' }, status: 'rolled_back', startedAt: at, finishedAt: at, durationMs: 1, steps: [], error: { code: 'HEALTH_CHECK_FAILED', message: '1.2.2 crashed during soak', step: 'soak' } })
    expect(await tickAt('2026-12-05T02:30:00Z')).toBeUndefined()
    expect(await tickAt('2026-12-06T02:10:00Z')).toBeUndefined()
    const after = await view()
    expect(after.decision.action).toBe('none')
    expect(after.decision.passedOver).toEqual([{ version: '1.2.2', reason: { code: 'rolled-back-before', text: 'rolled back before' } }])

    publish(release('1.2.3', '2026-12-06T00:00:00Z'))
    expect(await tickAt('2026-12-07T02:10:00Z')).toMatchObject({ version: 'v1.2.3', trigger: 'auto' })
    const v = await view()
    expect(v.decision.passedOver).toEqual(expect.arrayContaining([{ version: '1.3.0', reason: { code: 'policy', text: 'patch policy does not take minor release 1.3.0' } }]))
  })

  test('the circuit breaker: after 3 automatic failures in a row the app pauses itself (in the settings), until a resume', async () => {
    github.serveReleases(REPO, releases)
    const { paths } = await widget()
    // After the rolled-back 1.2.2, the 1.2.3 update requested above failed, and so did a second try.
    for (const [i, status] of (['failed', 'failed'] as const).entries()) {
      const at = clock.now().toISOString()
      await appendHistory(paths.history, { id: `20261207T02100${i}Z-0000abc${i}`, app: 'widget', kind: 'update', trigger: 'auto', from: { version: '1.2.1' }, to: { version: '1.2.3', tag: 'v1.2.3' }, status, startedAt: at, finishedAt: at, durationMs: 1, steps: [], error: { code: 'BUILD_FAILED', message: 'npm ci exited 1' } })
      clock.advance(60_000)
    }
    expect(await tickAt('2026-12-07T02:20:00Z')).toBeUndefined()
    const stored = JSON.parse(await readFile(path.join(t.dataDir, 'settings.json'), 'utf8'))
    expect(stored.apps.widget.policy.paused).toBe(true)
    expect((await view()).decision.reason).toEqual({ code: 'circuit-breaker', text: 'automatic updates paused after 3 failures in a row' })
    // A newer release does not get past it either…
    publish(release('1.2.4', '2026-12-06T00:00:00Z'))
    expect(await tickAt('2026-12-07T02:40:00Z')).toBeUndefined()
    // …until the app is resumed: the failures before the resume no longer count.
    expect((await cli('resume', ['--app', 'widget'])).code).toBe(0)
    expect(await tickAt('2026-12-07T02:45:00Z')).toMatchObject({ version: 'v1.2.4', trigger: 'auto' })
  })
})
