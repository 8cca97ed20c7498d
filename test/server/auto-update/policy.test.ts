import { describe, expect, test } from 'vitest'
import { type Attempt, type AutoUpdatePolicy, consecutiveAutoFailures, decide, DEFAULT_POLICY, parsePolicy, type PolicyInput, releaseDistance } from '../../../server/services/auto-update/policy'
import type { ReleaseInfo } from '../../../updater/shared/release-cache'

// The policy is pure: every case is a fixed clock, a policy, releases and a history.

const NOW = new Date('2026-12-02T12:00:00Z') // 13:00 in Berlin
const hoursAgo = (h: number) => new Date(NOW.getTime() - h * 3_600_000).toISOString()

const release = (version: string, ageHours = 100, extra: Partial<ReleaseInfo> = {}): ReleaseInfo => ({
  version,
  tag: `v${version}`,
  name: `v${version}`,
  notesMarkdown: '',
  url: `https://github.com/acme/widget/releases/tag/v${version}`,
  publishedAt: hoursAgo(ageHours),
  prerelease: version.includes('-'),
  ...extra,
})

const attempt = (version: string, status: Attempt['status'], trigger: Attempt['trigger'] = 'auto', hours = 10): Attempt => ({ kind: 'update', trigger, to: { version, tag: `v${version}` }, status, finishedAt: hoursAgo(hours) })

const BERLIN_3AM = { calendar: '*-*-* 03:00 Europe/Berlin', durationMinutes: 120 }

function input(policy: Partial<AutoUpdatePolicy>, rest: Partial<PolicyInput> = {}): PolicyInput {
  return { policy: { ...DEFAULT_POLICY, mode: 'patch', minReleaseAgeHours: 24, ...policy }, globalPause: false, runningVersion: '1.2.0', releases: [], history: [], now: NOW, timeZone: 'UTC', ...rest }
}

interface Case {
  name: string
  in: PolicyInput
  action: string
  version?: string
  code: string
  text?: string | RegExp
}

const cases: Case[] = [
  // Must-show 1, as pure steps: appears → too young → waits for the window → installs in it.
  { name: 'no release newer than the running one', in: input({}, { releases: [release('1.2.0'), release('1.1.0')] }), action: 'none', code: 'up-to-date', text: 'up to date' },
  { name: 'a release 2 h old with a 24 h minimum waits', in: input({}, { releases: [release('1.2.1', 2)] }), action: 'wait', version: '1.2.1', code: 'too-new', text: 'release is 2 h old, minimum 24 h' },
  { name: 'a release 20 min old', in: input({}, { releases: [release('1.2.1', 1 / 3)] }), action: 'wait', version: '1.2.1', code: 'too-new', text: 'release is 20 min old, minimum 24 h' },
  { name: 'old enough, outside the window: waits for it', in: input({ window: BERLIN_3AM }, { releases: [release('1.2.1', 30)] }), action: 'wait', version: '1.2.1', code: 'window', text: 'waiting for window at 03:00 (Europe/Berlin)' },
  { name: 'old enough, inside the window: installs', in: input({ window: BERLIN_3AM }, { releases: [release('1.2.1', 30)], now: new Date('2026-12-03T02:30:00Z') }), action: 'install', version: '1.2.1', code: 'ready' },
  { name: 'no window: installs at any time', in: input({}, { releases: [release('1.2.1', 30)] }), action: 'install', version: '1.2.1', code: 'ready', text: 'installing 1.2.1' },
  { name: 'minimum age 0: a brand-new release installs', in: input({ minReleaseAgeHours: 0 }, { releases: [release('1.2.1', 0)] }), action: 'install', version: '1.2.1', code: 'ready' },
  { name: 'unknown publish date (git ls-remote) with a minimum age waits', in: input({}, { releases: [release('1.2.1', 0, { publishedAt: '' })] }), action: 'wait', version: '1.2.1', code: 'age-unknown', text: 'release date unknown, minimum age 24 h' },
  // Semver distance.
  { name: 'a patch policy does not take a minor release', in: input({ mode: 'patch' }, { releases: [release('1.3.0')] }), action: 'none', version: '1.3.0', code: 'policy', text: 'patch policy does not take minor release 1.3.0' },
  { name: 'a patch policy takes the patch below a minor', in: input({ mode: 'patch' }, { releases: [release('1.3.0'), release('1.2.3'), release('1.2.2')] }), action: 'install', version: '1.2.3', code: 'ready' },
  { name: 'a minor policy takes a minor release', in: input({ mode: 'minor' }, { releases: [release('1.3.0')] }), action: 'install', version: '1.3.0', code: 'ready' },
  { name: 'a minor policy does not take a major release', in: input({ mode: 'minor' }, { releases: [release('2.0.0')] }), action: 'none', version: '2.0.0', code: 'policy', text: 'minor policy does not take major release 2.0.0' },
  { name: 'all takes a major release', in: input({ mode: 'all' }, { releases: [release('2.0.0'), release('1.9.0')] }), action: 'install', version: '2.0.0', code: 'ready' },
  // Channels.
  { name: 'stable channel ignores prereleases', in: input({ mode: 'all' }, { releases: [release('1.3.0-rc.1')] }), action: 'none', code: 'up-to-date' },
  { name: 'prerelease channel takes them', in: input({ mode: 'all', channel: 'prerelease' }, { releases: [release('1.3.0-rc.1')] }), action: 'install', version: '1.3.0-rc.1', code: 'ready' },
  // Switches.
  { name: 'mode off', in: input({ mode: 'off' }, { releases: [release('1.2.1')] }), action: 'none', version: '1.2.1', code: 'off', text: 'automatic updates are off' },
  { name: 'notify only announces', in: input({ mode: 'notify' }, { releases: [release('1.2.1')] }), action: 'notify-only', version: '1.2.1', code: 'notify' },
  { name: 'paused', in: input({ paused: true }, { releases: [release('1.2.1')] }), action: 'none', version: '1.2.1', code: 'paused', text: 'paused' },
  { name: 'paused for all apps', in: input({}, { releases: [release('1.2.1')], globalPause: true }), action: 'none', version: '1.2.1', code: 'paused-all', text: 'paused for all apps' },
  { name: 'a skipped version', in: input({ skip: ['v1.2.1'] }, { releases: [release('1.2.1')] }), action: 'none', version: '1.2.1', code: 'skipped', text: 'skipped' },
  { name: 'skipping the newest takes the one below', in: input({ skip: ['1.2.2'] }, { releases: [release('1.2.2'), release('1.2.1')] }), action: 'install', version: '1.2.1', code: 'ready' },
  // Must-show 4: a rolled-back release is not retried; a newer one is.
  { name: 'rolled back before: not retried', in: input({}, { releases: [release('1.2.1')], history: [attempt('1.2.1', 'rolled_back')] }), action: 'none', version: '1.2.1', code: 'rolled-back-before', text: 'rolled back before' },
  { name: 'rolled back by a manual update: not retried either', in: input({}, { releases: [release('1.2.1')], history: [attempt('1.2.1', 'rolled_back', 'request')] }), action: 'none', version: '1.2.1', code: 'rolled-back-before' },
  { name: 'a newer release clears it', in: input({}, { releases: [release('1.2.2'), release('1.2.1')], history: [attempt('1.2.1', 'rolled_back')] }), action: 'install', version: '1.2.2', code: 'ready' },
  { name: 'failed automatically before: not retried', in: input({}, { releases: [release('1.2.1')], history: [attempt('1.2.1', 'failed')] }), action: 'none', version: '1.2.1', code: 'failed-before', text: 'failed before' },
  { name: 'a manual failure (nothing changed) does not block', in: input({}, { releases: [release('1.2.1')], history: [attempt('1.2.1', 'failed', 'cli')] }), action: 'install', version: '1.2.1', code: 'ready' },
  // Circuit breaker.
  {
    name: '3 automatic failures in a row pause the app',
    in: input({}, { releases: [release('1.2.4')], history: [attempt('1.2.1', 'rolled_back', 'auto', 30), attempt('1.2.2', 'failed', 'auto', 20), attempt('1.2.3', 'rolled_back', 'auto', 10)] }),
    action: 'pause',
    version: '1.2.4',
    code: 'circuit-breaker',
    text: 'automatic updates paused after 3 failures in a row',
  },
  {
    name: 'once paused by the breaker, it says why',
    in: input({ paused: true }, { releases: [release('1.2.4')], history: [attempt('1.2.1', 'rolled_back', 'auto', 30), attempt('1.2.2', 'failed', 'auto', 20), attempt('1.2.3', 'rolled_back', 'auto', 10)] }),
    action: 'none',
    version: '1.2.4',
    code: 'circuit-breaker',
    text: 'automatic updates paused after 3 failures in a row',
  },
  {
    name: 'a resume forgets the failures before it',
    in: input({ resumedAt: hoursAgo(5) }, { releases: [release('1.2.4')], history: [attempt('1.2.1', 'rolled_back', 'auto', 30), attempt('1.2.2', 'failed', 'auto', 20), attempt('1.2.3', 'rolled_back', 'auto', 10)] }),
    action: 'install',
    version: '1.2.4',
    code: 'ready',
  },
  {
    name: 'a success in between resets the count',
    in: input({}, { releases: [release('1.2.5')], history: [attempt('1.2.1', 'rolled_back', 'auto', 40), attempt('1.2.2', 'failed', 'auto', 30), attempt('1.2.3', 'complete', 'request', 20), attempt('1.2.4', 'rolled_back', 'auto', 10)] }),
    action: 'install',
    version: '1.2.5',
    code: 'ready',
  },
]

describe('policy', () => {
  test.each(cases)('$name', (c) => {
    const d = decide(c.in)
    expect(d.action).toBe(c.action)
    expect(d.reason.code).toBe(c.code)
    expect(d.release?.version).toBe(c.version)
    if (c.text !== undefined) expect(d.reason.text).toMatch(c.text instanceof RegExp ? c.text : new RegExp(`^${c.text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`))
  })

  test('a wait says when the release will install itself: the first window after it is old enough', () => {
    // Published 2026-12-02 10:00 UTC, 24 h minimum → 2026-12-03 10:00 UTC, next 03:00 Berlin is 2026-12-04 02:00 UTC.
    const d = decide(input({ window: BERLIN_3AM }, { releases: [release('1.2.1', 2)] }))
    expect(d).toMatchObject({ action: 'wait', reason: { code: 'too-new' }, notBefore: '2026-12-04T02:00:00.000Z', nextWindowAt: '2026-12-03T02:00:00.000Z' })
    const w = decide(input({ window: BERLIN_3AM }, { releases: [release('1.2.1', 30)] }))
    expect(w).toMatchObject({ action: 'wait', reason: { code: 'window' }, notBefore: '2026-12-03T02:00:00.000Z' })
  })

  test('a window more than a day away names the day', () => {
    const d = decide(input({ window: { calendar: 'Sat 03:00 Europe/Berlin', durationMinutes: 60 } }, { releases: [release('1.2.1', 30)] }))
    expect(d.reason.text).toBe('waiting for window at Sat 2026-12-05 03:00 (Europe/Berlin)')
  })

  test('a window without a zone is read in the zone passed in', () => {
    const d = decide(input({ window: { calendar: '*-*-* 03:00', durationMinutes: 60 } }, { releases: [release('1.2.1', 30)], timeZone: 'America/New_York' }))
    expect(d).toMatchObject({ reason: { text: 'waiting for window at 03:00 (America/New_York)' }, notBefore: '2026-12-03T08:00:00.000Z' })
  })

  test('releases passed over are listed with their reasons', () => {
    const d = decide(input({ skip: ['1.2.3'] }, { releases: [release('1.3.0'), release('1.2.3'), release('1.2.2', 1), release('1.2.1')] }))
    expect(d).toMatchObject({ action: 'install', release: { version: '1.2.1' } })
    expect(d.passedOver).toEqual([
      { version: '1.3.0', reason: { code: 'policy', text: 'patch policy does not take minor release 1.3.0' } },
      { version: '1.2.3', reason: { code: 'skipped', text: 'skipped' } },
      { version: '1.2.2', reason: { code: 'too-new', text: 'release is 1 h old, minimum 24 h' } },
    ])
  })

  test('semver distance ignores git describe suffixes and prerelease tags', () => {
    expect(releaseDistance('1.2.0', '1.2.5')).toBe('patch')
    expect(releaseDistance('1.2.0-3-gabc1234', '1.2.1')).toBe('patch')
    expect(releaseDistance('1.2.9', '1.3.0-rc.1')).toBe('minor')
    expect(releaseDistance('1.9.9', '2.0.0')).toBe('major')
    expect(releaseDistance('0.0.0-dev', '0.0.1')).toBe('patch')
  })

  test('failures are counted newest first and stop at a success', () => {
    expect(consecutiveAutoFailures([attempt('1.0.1', 'rolled_back', 'auto', 3), attempt('1.0.2', 'failed', 'cli', 2), attempt('1.0.3', 'failed', 'auto', 1)])).toBe(2)
    expect(consecutiveAutoFailures([attempt('1.0.3', 'failed', 'auto', 1), attempt('1.0.2', 'complete', 'auto', 2), attempt('1.0.1', 'failed', 'auto', 3)])).toBe(1)
  })
})

describe('parsePolicy', () => {
  test('fills the defaults and normalizes versions', () => {
    expect(parsePolicy({ mode: 'patch', skip: ['v1.3.0'], window: BERLIN_3AM })).toEqual({ ...DEFAULT_POLICY, mode: 'patch', skip: ['1.3.0'], window: BERLIN_3AM })
    expect(parsePolicy({})).toEqual(DEFAULT_POLICY)
  })

  test.each([
    [{ mode: 'sometimes' }, /mode must be one of off, notify, patch, minor, all/],
    [{ window: { calendar: 'Mon..Fry 03:00', durationMinutes: 60 } }, /"Fry" is not a weekday/],
    [{ window: { calendar: '*-*-* 03:00', durationMinutes: 0 } }, /1 to 10080 minutes/],
    [{ window: '03:00' }, /window must be/],
    [{ skip: ['latest'] }, /skip must be a list of versions/],
    [{ minReleaseAgeHours: -1 }, /minReleaseAgeHours/],
    [{ paused: 'yes' }, /paused must be true or false/],
    [{ maxFailures: 0 }, /maxFailures/],
    [{ when: 'now' }, /unknown policy field "when"/],
    [[], /JSON object/],
  ])('%j is refused', (value, message) => {
    expect(() => parsePolicy(value)).toThrow(message)
  })
})
