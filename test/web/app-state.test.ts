import { describe, expect, test } from 'vitest'
import type { UpdatesStatus } from '../../web/src/api'
import { appStateOf, failedVersionOfLastRun, isUpToDate, lastRunText, offeredUpdates, offersList, offersTitle } from '../../web/src/lib/app-state'
import type { RunView } from '../../web/src/lib/update-progress'

const release = (version: string) => ({ tag: `v${version}`, version, name: `v${version}`, publishedAt: null, url: '', notesMarkdown: '', prerelease: false })

type StatusOver = Partial<Omit<UpdatesStatus, 'current' | 'latest'>> & { current?: string; latest?: string | null }

function status(over: StatusOver = {}): UpdatesStatus {
  const { current = '1.0.0', latest = '1.1.0', ...rest } = over
  return {
    current: { version: current, commit: 'abc' },
    latest: latest ? release(latest) : null,
    releases: latest ? [release(latest)] : [],
    updateAvailable: latest !== null && latest !== current,
    checkedAt: '2026-11-23T10:00:00Z',
    nextCheckAt: null,
    source: { repo: 'acme/upkeep', from: 'env' },
    channel: 'stable',
    checksDisabled: false,
    checkEnabled: true,
    via: 'api',
    error: null,
    running: null,
    ...rest,
  } as UpdatesStatus
}

const run = (over: Partial<RunView>): RunView => ({ updateId: 'u1', kind: 'update', from: '1.0.0', to: '1.1.0', steps: [], log: [], status: 'running', rolledBack: false, lastEventId: 1, startedAt: 0, clockOffsetMs: 0, ...over })

describe('offered updates across apps', () => {
  const none = () => false
  test('one offer per app with a newer release, in the apps’ order', () => {
    const offers = offeredUpdates(
      [
        { name: 'upkeep', status: status({ latest: '1.2.0' }), failedVersion: undefined, busy: false },
        { name: 'notes', status: status({ current: '3.0.0', latest: '3.1.0' }), failedVersion: undefined, busy: false },
        { name: 'wiki', status: status({ current: '2.0.0', latest: '2.0.0' }), failedVersion: undefined, busy: false },
      ],
      none,
    )
    expect(offers).toEqual([
      { app: 'upkeep', label: 'Upkeep', version: '1.2.0', current: '1.0.0' },
      { app: 'notes', label: 'notes', version: '3.1.0', current: '3.0.0' },
    ])
    expect(offersTitle(offers)).toBe('2 updates available')
    expect(offersList(offers)).toBe('Upkeep 1.2.0, notes 3.1.0')
    expect(offersTitle(offers.slice(1))).toBe('notes 3.1.0 is available')
  })
  test.each([
    ['the release that failed to install last', { failedVersion: '3.1.0', busy: false }],
    ['an app whose run the banner shows', { failedVersion: undefined, busy: true }],
  ])('not offered: %s', (_why, over) => {
    expect(offeredUpdates([{ name: 'notes', status: status({ current: '3.0.0', latest: '3.1.0' }), ...over }], none)).toEqual([])
  })
  test('dismissed per app and version', () => {
    const apps = [
      { name: 'upkeep', status: status({ latest: '3.1.0' }), failedVersion: undefined, busy: false },
      { name: 'notes', status: status({ current: '3.0.0', latest: '3.1.0' }), failedVersion: undefined, busy: false },
    ]
    expect(offeredUpdates(apps, (app, v) => app === 'notes' && v === '3.1.0').map((o) => o.app)).toEqual(['upkeep'])
  })
  test('no status yet: nothing offered', () => {
    expect(offeredUpdates([{ name: 'notes', status: undefined, failedVersion: undefined, busy: false }], none)).toEqual([])
  })
})

describe("an app's state in the list", () => {
  test.each<[string, Parameters<typeof appStateOf>, string, string]>([
    ['broken definition', [{ error: { code: 'BAD_CONFIG', message: 'x' } }, undefined, undefined, undefined], 'broken', 'Broken definition'],
    ['not loaded', [{}, undefined, undefined, undefined], 'loading', 'Loading…'],
    ['a run followed', [{}, status(), run({}), undefined], 'running', 'Updating to 1.1.0'],
    ['requested, not yet started', [{}, status({ running: { state: 'requested', updateId: null, from: null, to: '1.1.0', startedAt: null } }), undefined, undefined], 'requested', 'Updating to 1.1.0'],
    ['interrupted', [{}, status({ latest: '1.0.0', running: { state: 'interrupted', updateId: 'u0', from: '1.0.0', to: '1.1.0', startedAt: null } }), undefined, undefined], 'interrupted', 'An update stopped before it finished'],
    ['newer release', [{}, status(), undefined, undefined], 'available', 'Update available: 1.1.0'],
    ['newest release failed', [{}, status(), run({ status: 'rolled_back' }), '1.1.0'], 'failed-release', '1.1.0 failed to install'],
    ['up to date', [{}, status({ latest: '1.0.0' }), undefined, undefined], 'up-to-date', 'Up to date'],
    ['check failed', [{}, status({ latest: '1.0.0', error: { code: 'UPSTREAM_ERROR', message: 'down' } }), undefined, undefined], 'unknown', 'Not known'],
    ['checks disabled', [{}, status({ latest: null, checksDisabled: true }), undefined, undefined], 'checks-off', 'Checks are disabled'],
  ])('%s', (_name, args, kind, text) => expect(appStateOf(...args)).toEqual({ kind, text }))
})

describe('up to date, only from a complete answer', () => {
  test.each<[string, StatusOver, boolean]>([
    ["GitHub's release list", { latest: '1.0.0' }, true],
    ['rate limited, answer still cached', { latest: '1.0.0', error: { code: 'RATE_LIMITED', message: 'later' } }, true],
    ["Upkeep's tags of origin (GitHub unreachable)", { latest: '1.0.0', via: 'git' }, false],
    ["an app's git remote named by its definition", { latest: '1.0.0', via: 'git', source: { repo: '/srv/notes.git', from: 'definition' } }, true],
    ["an app's git remote that failed", { latest: '1.0.0', via: 'git', source: { repo: '/srv/notes.git', from: 'definition' }, error: { code: 'UPSTREAM_ERROR', message: 'x' } }, false],
    ['never checked', { latest: null, checkedAt: null, via: null }, false],
    ['no source', { latest: null, source: null }, false],
    ['newer release', {}, false],
  ])('%s', (_name, over, expected) => expect(isUpToDate(status(over))).toBe(expected))
})

describe('the last update of an app, from the apps list', () => {
  const last = (over: object) => ({ id: 'u1', status: 'rolled_back' as const, from: { version: '1.0.0' }, to: { version: '1.1.0', tag: 'v1.1.0' }, finishedAt: '2026-11-23T10:00:00Z', ...over })
  test.each([
    ['rolled back: the release failed', last({}), '1.1.0'],
    ['failed in its health check', last({ status: 'failed', error: { code: 'HEALTH_CHECK_FAILED', message: 'x', step: 'health' } }), '1.1.0'],
    ['failed in preflight: the cause is on this server', last({ status: 'failed', error: { code: 'DIRTY_WORKTREE', message: 'x', step: 'preflight' } }), undefined],
    ['complete', last({ status: 'complete' }), undefined],
  ])('%s', (_name, entry, expected) => expect(failedVersionOfLastRun(entry)).toBe(expected))
  test('in words', () => {
    expect(lastRunText(null)).toBe('No updates yet')
    expect(lastRunText(last({}))).toBe('Rolled back 1.0.0 → 1.1.0')
    expect(lastRunText(last({ status: 'complete' }))).toBe('Updated 1.0.0 → 1.1.0')
  })
})
