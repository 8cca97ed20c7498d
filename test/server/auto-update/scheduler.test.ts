import { pino } from 'pino'
import { afterEach, describe, expect, test } from 'vitest'
import type { EventInput } from '../../../server/services/auto-update/events'
import { type Attempt, type AutoUpdatePolicy, DEFAULT_POLICY } from '../../../server/services/auto-update/policy'
import { type AppSnapshot, createScheduler, type Scheduler } from '../../../server/services/auto-update/scheduler'
import type { ReleaseInfo } from '../../../updater/shared/release-cache'
import { manualClock, type ManualClock } from '../../support/manual-clock'

// The scheduler with a clock that moves only when told: days pass in milliseconds, and every
// minute tick and window start in between happens, in order.

const hours = (h: number) => h * 3_600_000

function release(version: string, publishedAt: string): ReleaseInfo {
  return { version, tag: `v${version}`, name: `v${version}`, notesMarkdown: '', url: '', publishedAt, prerelease: false }
}

/** One app and what the updater would do: requests are recorded, outcomes are set by the test. */
function world(clock: ManualClock, policy: Partial<AutoUpdatePolicy>) {
  const w = {
    policy: { ...DEFAULT_POLICY, ...policy } as AutoUpdatePolicy,
    globalPause: false,
    running: '1.2.0',
    releases: [] as ReleaseInfo[],
    history: [] as Attempt[],
    busy: false,
    requests: [] as { tag: string; at: string }[],
    events: [] as EventInput[],
    failRequests: false,
    /** The updater finished the last requested update with `status`. */
    finish(status: Attempt['status']) {
      const r = w.requests[w.requests.length - 1]!
      w.history.push({ kind: 'update', trigger: 'auto', to: { version: r.tag.slice(1), tag: r.tag }, status, finishedAt: clock.now().toISOString() })
      if (status === 'complete') w.running = r.tag.slice(1)
    },
  }
  const snapshot = (): AppSnapshot => ({ app: 'widget', policy: w.policy, runningVersion: w.running, releases: [...w.releases], history: [...w.history], busy: w.busy, url: 'http://upkeep.test/apps/widget' })
  const scheduler = createScheduler({
    clock,
    apps: async () => [snapshot()],
    globalPause: async () => w.globalPause,
    requestUpdate: async (_app, tag) => {
      if (w.failRequests) throw new Error('an update is already running')
      w.requests.push({ tag, at: clock.now().toISOString() })
      return { updateId: `u${w.requests.length}` }
    },
    pauseApp: async () => {
      w.policy = { ...w.policy, paused: true }
    },
    notify: (e) => void w.events.push(e),
    log: pino({ level: 'silent' }),
  })
  return { w, scheduler }
}

const reasonOf = (s: Scheduler) => s.status()[0]?.decision.reason

let running: Scheduler | undefined
afterEach(async () => {
  await running?.stop()
  running = undefined
})

describe('scheduler (must-show 1): minimum age, window, patch policy, pause', () => {
  test('a release appears, waits for its age and the window, installs at the window start; a minor is ignored; pause stops everything until resume', async () => {
    const clock = manualClock('2026-12-01T10:00:00Z')
    const { w, scheduler } = world(clock, { mode: 'patch', minReleaseAgeHours: 24, window: { calendar: '*-*-* 03:00 Europe/Berlin', durationMinutes: 120 } })
    running = scheduler
    scheduler.start()
    await clock.untilSleeping()
    expect(reasonOf(scheduler)).toEqual({ code: 'up-to-date', text: 'up to date' })

    // 1.2.1 is published.
    w.releases.push(release('1.2.1', '2026-12-01T10:30:00Z'))
    await clock.advanceTo('2026-12-01T11:00:00Z')
    expect(reasonOf(scheduler)).toEqual({ code: 'too-new', text: 'release is 30 min old, minimum 24 h' })
    expect(w.events).toEqual([expect.objectContaining({ event: 'update-available', app: 'widget', version: { from: '1.2.0', to: '1.2.1' } })])

    // The next window opens (03:00 Berlin = 02:00 UTC), but 1.2.1 is only 16 h old.
    await clock.advanceTo('2026-12-02T02:30:00Z')
    expect(w.requests).toEqual([])
    expect(scheduler.status()[0]!.decision).toMatchObject({ action: 'wait', reason: { code: 'too-new', text: 'release is 16 h old, minimum 24 h' }, notBefore: '2026-12-03T02:00:00.000Z' })

    // Old enough, outside the window.
    await clock.advanceTo('2026-12-02T12:00:00Z')
    expect(reasonOf(scheduler)).toEqual({ code: 'window', text: 'waiting for window at 03:00 (Europe/Berlin)' })
    expect(w.requests).toEqual([])

    // The window opens: installed at its very start.
    await clock.advanceTo('2026-12-03T02:05:00Z')
    expect(w.requests).toEqual([{ tag: 'v1.2.1', at: '2026-12-03T02:00:00.000Z' }])
    w.finish('complete')

    // A minor release under a patch policy: announced, never installed.
    w.releases.push(release('1.3.0', '2026-12-03T00:00:00Z'))
    await clock.advanceTo('2026-12-04T02:30:00Z')
    expect(w.requests).toHaveLength(1)
    expect(scheduler.status()[0]!.decision).toMatchObject({ action: 'none', release: { version: '1.3.0' }, reason: { code: 'policy', text: 'patch policy does not take minor release 1.3.0' } })
    expect(w.events.map((e) => `${e.event} ${e.version?.to}`)).toEqual(['update-available 1.2.1', 'update-available 1.3.0'])

    // A patch release, while everything is paused: nothing through two windows.
    w.releases.push(release('1.2.2', '2026-12-04T00:00:00Z'))
    w.globalPause = true
    await clock.advanceTo('2026-12-05T02:30:00Z')
    expect(reasonOf(scheduler)).toEqual({ code: 'paused-all', text: 'paused for all apps' })
    w.globalPause = false
    w.policy = { ...w.policy, paused: true }
    await clock.advanceTo('2026-12-06T02:30:00Z')
    expect(reasonOf(scheduler)).toEqual({ code: 'paused', text: 'paused' })
    expect(w.requests).toHaveLength(1)

    // Resume inside the window: the next tick installs it.
    w.policy = { ...w.policy, paused: false, resumedAt: clock.now().toISOString() }
    await clock.advanceTo('2026-12-06T02:31:00Z')
    expect(w.requests).toEqual([
      { tag: 'v1.2.1', at: '2026-12-03T02:00:00.000Z' },
      { tag: 'v1.2.2', at: '2026-12-06T02:31:00.000Z' },
    ])
  })

  test('it wakes at a window start that is not on a minute, not only every minute', async () => {
    const clock = manualClock('2026-12-03T01:58:10Z')
    const { w, scheduler } = world(clock, { mode: 'patch', minReleaseAgeHours: 0, window: { calendar: '*-*-* 03:00:30 Europe/Berlin', durationMinutes: 60 } })
    w.releases.push(release('1.2.1', '2026-11-01T00:00:00Z'))
    running = scheduler
    scheduler.start()
    await clock.advanceTo('2026-12-03T02:01:00Z')
    expect(clock.sleeps.slice(0, 3).map((t) => new Date(t).toISOString())).toEqual(['2026-12-03T01:59:00.000Z', '2026-12-03T02:00:00.000Z', '2026-12-03T02:00:30.000Z'])
    expect(w.requests).toEqual([{ tag: 'v1.2.1', at: '2026-12-03T02:00:30.000Z' }])
  })

  test('stop() ends the loop while it sleeps', async () => {
    const clock = manualClock('2026-12-03T01:58:10Z')
    const { scheduler } = world(clock, { mode: 'patch' })
    scheduler.start()
    await clock.untilSleeping()
    await scheduler.stop()
    expect(scheduler.status()).toHaveLength(1)
  })
})

describe('scheduler (must-show 4): after a rollback', () => {
  test('the same release is not retried automatically; a newer one is', async () => {
    const clock = manualClock('2026-12-02T12:00:00Z')
    const { w, scheduler } = world(clock, { mode: 'patch', minReleaseAgeHours: 0 })
    w.releases.push(release('1.2.1', '2026-12-01T00:00:00Z'))

    await scheduler.tick()
    expect(w.requests.map((r) => r.tag)).toEqual(['v1.2.1'])
    w.finish('rolled_back')

    for (let i = 0; i < 5; i++) {
      clock.set(new Date(clock.now().getTime() + hours(6)).toISOString())
      await scheduler.tick()
    }
    expect(w.requests.map((r) => r.tag)).toEqual(['v1.2.1'])
    expect(reasonOf(scheduler)).toEqual({ code: 'rolled-back-before', text: 'rolled back before' })

    w.releases.push(release('1.2.2', clock.now().toISOString()))
    await scheduler.tick()
    expect(w.requests.map((r) => r.tag)).toEqual(['v1.2.1', 'v1.2.2'])
  })

  test('a request is not repeated while the updater has not recorded it', async () => {
    const clock = manualClock('2026-12-02T12:00:00Z')
    const { w, scheduler } = world(clock, { mode: 'patch', minReleaseAgeHours: 0 })
    w.releases.push(release('1.2.1', '2026-12-01T00:00:00Z'))
    await scheduler.tick()
    clock.set('2026-12-02T12:01:00Z')
    await scheduler.tick()
    w.busy = true
    clock.set('2026-12-02T12:02:00Z')
    await scheduler.tick()
    expect(w.requests).toHaveLength(1)
    // A request the updater never took up (30 minutes) no longer blocks.
    w.busy = false
    clock.set('2026-12-02T12:45:00Z')
    await scheduler.tick()
    expect(w.requests).toHaveLength(2)
  })

  test('a refused request is not a failure: the next tick asks again', async () => {
    const clock = manualClock('2026-12-02T12:00:00Z')
    const { w, scheduler } = world(clock, { mode: 'patch', minReleaseAgeHours: 0 })
    w.releases.push(release('1.2.1', '2026-12-01T00:00:00Z'))
    w.failRequests = true
    const [first] = await scheduler.tick()
    expect(first!.acted).toEqual({ error: 'an update is already running' })
    w.failRequests = false
    await scheduler.tick()
    expect(w.requests.map((r) => r.tag)).toEqual(['v1.2.1'])
  })

  test('three automatic failures in a row pause the app and say so', async () => {
    const clock = manualClock('2026-12-02T12:00:00Z')
    const { w, scheduler } = world(clock, { mode: 'patch', minReleaseAgeHours: 0 })
    for (const v of ['1.2.1', '1.2.2', '1.2.3']) {
      w.releases.push(release(v, '2026-12-01T00:00:00Z'))
      await scheduler.tick()
      w.finish(v === '1.2.2' ? 'failed' : 'rolled_back')
      clock.set(new Date(clock.now().getTime() + hours(1)).toISOString())
    }
    expect(w.requests.map((r) => r.tag)).toEqual(['v1.2.1', 'v1.2.2', 'v1.2.3'])
    w.releases.push(release('1.2.4', '2026-12-01T00:00:00Z'))
    const [tripped] = await scheduler.tick()
    expect(tripped!.acted).toEqual({ paused: true })
    expect(w.policy.paused).toBe(true)
    expect(w.events.filter((e) => e.event === 'auto-paused')).toEqual([expect.objectContaining({ app: 'widget', detail: 'automatic updates paused after 3 failures in a row' })])
    await scheduler.tick()
    expect(reasonOf(scheduler)).toEqual({ code: 'circuit-breaker', text: 'automatic updates paused after 3 failures in a row' })
    expect(w.requests).toHaveLength(3)

    // `upkeep resume`: paused off, failures before now forgotten.
    w.policy = { ...w.policy, paused: false, resumedAt: clock.now().toISOString() }
    await scheduler.tick()
    expect(w.requests.map((r) => r.tag)).toEqual(['v1.2.1', 'v1.2.2', 'v1.2.3', 'v1.2.4'])
  })

  test('notify mode announces each release once and installs nothing', async () => {
    const clock = manualClock('2026-12-02T12:00:00Z')
    const { w, scheduler } = world(clock, { mode: 'notify' })
    w.releases.push(release('1.2.1', '2026-12-01T00:00:00Z'))
    await scheduler.tick()
    await scheduler.tick()
    w.releases.push(release('1.3.0', '2026-12-01T00:00:00Z'))
    await scheduler.tick()
    expect(w.requests).toEqual([])
    expect(w.events).toEqual([
      expect.objectContaining({ event: 'update-available', version: { from: '1.2.0', to: '1.2.1' }, url: 'http://upkeep.test/apps/widget' }),
      expect.objectContaining({ event: 'update-available', version: { from: '1.2.0', to: '1.3.0' } }),
    ])
    expect(reasonOf(scheduler)).toEqual({ code: 'notify', text: 'notify only: 1.3.0 is available' })
  })
})
