import { describe, expect, test } from 'vitest'
import type { HistoryEntry } from '../../updater/shared/history'
import type { StatusEvent, StatusEventBody } from '../../updater/shared/status'
import { failedVersion, lastFailure } from '../../web/src/lib/last-failure'
import { pendingUpdate } from '../../web/src/lib/pending-update'
import { outcomeSummary, outcomeTitle } from '../../web/src/lib/run-outcome'
import { elapsedMs, formatClock, progressOf } from '../../web/src/lib/run-progress'
import { duringServerRestart, mayRestartServer } from '../../web/src/lib/server-restart'
import { activityOf, applyEvents, runFromHistory } from '../../web/src/lib/update-progress'

const T0 = Date.parse('2026-11-23T10:00:00Z')
const PLAN = ['preflight', 'backup', 'fetch', 'build', 'switch', 'restart', 'health', 'commit'] as const

/** Status events as the updater writes them, one second apart, for update `u1`. */
function events(bodies: StatusEventBody[]): StatusEvent[] {
  return bodies.map((b, i) => ({ ...b, id: i + 1, updateId: 'u1', at: new Date(T0 + i * 1000).toISOString() }) as StatusEvent)
}
const started: StatusEventBody = { type: 'update-started', kind: 'update', from: { version: '1.1.0' }, to: { version: '1.2.0', tag: 'v1.2.0' }, steps: [...PLAN] }
const step = (name: (typeof PLAN)[number] | 'rollback', durationMs = 100): StatusEventBody[] => [
  { type: 'step-started', step: name },
  { type: 'step-finished', step: name, durationMs },
]
const CRASH = { code: 'HEALTH_CHECK_FAILED', message: '1.2.0 is not running: the server exited with status 1; output:\nError: v1.2.0 is broken on purpose\n    at main', hint: 'See journalctl -u upkeep.service', step: 'health' }

/** A release that crashes at start: built and switched to, restarted, failed its health check, rolled back. */
const rolledBack = events([
  started,
  ...step('preflight'),
  ...step('backup'),
  ...step('fetch'),
  { type: 'log', level: 'info', step: 'build', message: '$ npm run build' },
  ...step('build', 4000),
  ...step('switch'),
  ...step('restart'),
  { type: 'step-started', step: 'health' },
  { type: 'step-failed', step: 'health', durationMs: 800, error: CRASH },
  ...step('rollback', 1200),
  { type: 'finished', status: 'rolled_back', durationMs: 9000, error: CRASH, backupPath: '/b/upkeep-1.1.0.tar.gz' },
])

describe('the run view', () => {
  const run = applyEvents(undefined, rolledBack, T0 + 60_000)!

  test('the rollback comes right after the failed step; steps never run come last, as skipped', () => {
    expect(run.steps.map((s) => `${s.name}:${s.state}`)).toEqual([
      'preflight:done',
      'backup:done',
      'fetch:done',
      'build:done',
      'switch:done',
      'restart:done',
      'health:failed',
      'rollback:done',
      'commit:skipped',
    ])
  })

  test('the outcome, the failed step and its error with the crash output', () => {
    expect(run).toMatchObject({ status: 'rolled_back', failedStep: 'health', rolledBack: true, backupPath: '/b/upkeep-1.1.0.tar.gz', durationMs: 9000 })
    expect(run.error?.message).toContain('broken on purpose')
  })

  test('the log goes on after the build: restart, health check, its error and output, rollback, outcome', () => {
    const log = run.log.map((l) => l.message).join('\n')
    expect(log).toContain('$ npm run build')
    const after = log.slice(log.indexOf('✓ Build'))
    for (const line of ['▶ Restart', '✓ Restart', '▶ Health check', '✗ Health check failed: 1.2.0 is not running: the server exited with status 1', 'Error: v1.2.0 is broken on purpose', '▶ Roll back', '✓ Roll back (1.2 s)', 'Rolled back: 1.1.0 runs again.']) {
      expect(after).toContain(line)
    }
    expect(run.log.find((l) => l.message.startsWith('✗'))?.level).toBe('error')
  })

  test('events of another update, and events seen before, change nothing', () => {
    const other = { ...rolledBack[1]!, updateId: 'u2', id: 99 } as StatusEvent
    expect(applyEvents(run, [other])).toBe(run)
    expect(applyEvents(run, [rolledBack[5]!])).toBe(run)
  })

  test('the same view from the history entry after a reload (without the live log)', () => {
    const entry: HistoryEntry = {
      id: 'u1',
      kind: 'update',
      trigger: 'request',
      from: { version: '1.1.0' },
      to: { version: '1.2.0', tag: 'v1.2.0' },
      status: 'rolled_back',
      startedAt: new Date(T0).toISOString(),
      finishedAt: new Date(T0 + 9000).toISOString(),
      durationMs: 9000,
      steps: [...PLAN.slice(0, 6).map((name) => ({ name, status: 'finished' as const, durationMs: 100 })), { name: 'health', status: 'failed' }, { name: 'rollback', status: 'finished', durationMs: 1200 }],
      error: CRASH,
      backupPath: '/b/upkeep-1.1.0.tar.gz',
    }
    const view = runFromHistory(entry)
    expect(view).toMatchObject({ status: 'rolled_back', failedStep: 'health', rolledBack: true, from: '1.1.0', to: '1.2.0', fromHistory: true, backupPath: '/b/upkeep-1.1.0.tar.gz' })
    expect(view.steps.map((s) => `${s.name}:${s.state}`)).toEqual(run.steps.filter((s) => s.state !== 'skipped').map((s) => `${s.name}:${s.state}`))
  })
})

describe('the progress bar', () => {
  // Each event arrives the moment it is written (browser and server clocks agree).
  const upTo = (n: number, at = T0 + (n - 1) * 1000) => applyEvents(undefined, rolledBack.slice(0, n), at)!

  test('keeps moving while a step runs, never reaching the step\'s end until it has finished', () => {
    const building = upTo(9) // up to the build's start
    expect(building.steps.find((s) => s.state === 'running')?.name).toBe('build')
    const at = (s: number) => progressOf(building, T0 + 8000 + s * 1000)
    expect(at(1)).toBeGreaterThan(at(0))
    expect(at(30)).toBeGreaterThan(at(10))
    const afterBuild = progressOf(upTo(10), T0 + 10_000)
    expect(at(3600)).toBeLessThan(afterBuild)
  })

  test('never goes back from one event to the next, and is 1 only at the end', () => {
    let previous = 0
    for (let n = 1; n <= rolledBack.length; n++) {
      const run = upTo(n)
      const p = progressOf(run, T0 + n * 1000)
      expect(p).toBeGreaterThanOrEqual(previous)
      expect(p === 1).toBe(run.status !== 'running')
      previous = p
    }
  })

  test('a byte count of the backup fills its share exactly', () => {
    const backingUp = applyEvents(undefined, events([started, ...step('preflight'), { type: 'step-started', step: 'backup' }, { type: 'progress', step: 'backup', done: 50, total: 100, unit: 'bytes' }]), T0)!
    const before = progressOf(applyEvents(undefined, events([started, ...step('preflight')]), T0)!, T0)
    const after = progressOf(applyEvents(undefined, events([started, ...step('preflight'), ...step('backup')]), T0)!, T0)
    expect(progressOf(backingUp, T0)).toBeCloseTo((before + after) / 2, 5)
  })

  test('elapsed time counts from the start in the server\'s clock, whatever the browser\'s says', () => {
    // The browser's clock is 5 minutes ahead: the first event arrives "5 minutes late".
    const run = applyEvents(undefined, rolledBack.slice(0, 3), T0 + 2000 + 300_000)!
    expect(elapsedMs(run, T0 + 10_000 + 300_000)).toBe(10_000)
    expect(elapsedMs(applyEvents(undefined, rolledBack)!, 0)).toBe(9000)
    expect(formatClock(42_000)).toBe('0:42')
    expect(formatClock(3_723_000)).toBe('1:02:03')
  })

  test('says what runs, or between two steps the next one', () => {
    expect(activityOf(upTo(1))).toBe('Starting…')
    expect(activityOf(upTo(9))).toBe('Build…')
    expect(activityOf(upTo(10))).toBe('Switch to new build…')
  })
})

describe('while the server restarts', () => {
  const upTo = (n: number) => applyEvents(undefined, rolledBack.slice(0, n), T0 + n * 1000)!

  test('the restart is the running step, not the build whose end the old server had no time to send', () => {
    const building = upTo(9)
    expect(mayRestartServer(building)).toBe(true)
    const shown = duringServerRestart(building, T0 + 9000)
    expect(shown.steps.map((s) => `${s.name}:${s.state}`)).toEqual([
      'preflight:done',
      'backup:done',
      'fetch:done',
      'build:done',
      'switch:done',
      'restart:running',
      'health:pending',
      'commit:pending',
    ])
    // and the bar goes on from there
    expect(progressOf(shown, T0 + 10_000)).toBeGreaterThan(progressOf(building, T0 + 10_000))
  })

  test('before the build nothing restarts the server; past the restart, and in a rollback, the real steps show', () => {
    const fetching = upTo(6)
    expect(mayRestartServer(fetching)).toBe(false)
    expect(duringServerRestart(fetching, T0)).toBe(fetching)
    const checking = upTo(15) // up to the health check's start
    expect(duringServerRestart(checking, T0)).toBe(checking)
    const rollingBack = upTo(17) // up to the rollback's start
    expect(mayRestartServer(rollingBack)).toBe(true)
    expect(duringServerRestart(rollingBack, T0)).toBe(rollingBack)
  })
})

describe('the last failure, from the history', () => {
  const failedAt = (step: HistoryEntry['steps'][number]['name']) => [{ name: step, status: 'failed' as const }]
  const entry = (status: HistoryEntry['status'], to: string, steps: HistoryEntry['steps'] = []) => ({ status, kind: 'update' as const, to: { version: to, tag: `v${to}` }, steps })
  test('the newest entry, when it did not complete', () => {
    expect(lastFailure([entry('rolled_back', '1.2.0'), entry('complete', '1.1.0')])?.to.version).toBe('1.2.0')
    expect(lastFailure([entry('complete', '1.2.0'), entry('failed', '1.1.0')])).toBeUndefined()
    expect(lastFailure([])).toBeUndefined()
    expect(lastFailure(null)).toBeUndefined()
  })
  test('a release that failed by its own fault is not offered as available again (until a newer one comes)', () => {
    expect(failedVersion([entry('rolled_back', '1.2.0', failedAt('health'))])).toBe('1.2.0')
    expect(failedVersion([entry('failed', '1.2.0', failedAt('build'))])).toBe('1.2.0')
    expect(failedVersion([entry('complete', '1.2.0')])).toBeUndefined()
    expect(failedVersion([{ ...entry('failed', '1.0.0', failedAt('switch')), kind: 'rollback' }])).toBeUndefined()
  })
  test('a failure on this server (a dirty checkout, no network, a full disk) does not hold the release back', () => {
    for (const step of ['preflight', 'backup', 'fetch'] as const) expect(failedVersion([entry('failed', '1.2.0', failedAt(step))])).toBeUndefined()
  })
})

describe('an update the server reports as running', () => {
  const ended = applyEvents(undefined, rolledBack)!
  const running = (state: 'running' | 'requested' | 'interrupted', updateId: string | null) => ({ state, updateId, from: null, to: '1.2.0', startedAt: null })
  test('is the one to show while nothing here has ended', () => {
    expect(pendingUpdate(running('requested', 'u2'), undefined)?.updateId).toBe('u2')
    expect(pendingUpdate(running('running', null), undefined)?.state).toBe('running')
    expect(pendingUpdate(running('interrupted', 'u1'), undefined)).toBeNull()
  })
  test('is not the run that has just ended (its updater still holds the lock for a moment)', () => {
    expect(pendingUpdate(running('running', null), ended)).toBeNull()
    expect(pendingUpdate(running('running', 'u1'), ended)).toBeNull()
    expect(pendingUpdate(running('requested', 'u2'), ended)?.updateId).toBe('u2')
  })
})

describe('the outcome in words', () => {
  test.each([
    [{ status: 'complete', from: '1.0.0', to: '1.1.0', rolledBack: false }, 'Updated to 1.1.0', undefined],
    [{ status: 'rolled_back', from: '1.0.0', to: '1.1.0', rolledBack: true, failedStep: 'health' }, 'Update to 1.1.0 failed', '1.0.0 was restored and runs again.'],
    [{ status: 'failed', from: '1.0.0', to: '1.1.0', rolledBack: false, failedStep: 'build' }, 'Update to 1.1.0 failed', 'Nothing was changed: 1.0.0 still runs.'],
    [{ status: 'failed', from: '1.0.0', to: '1.1.0', rolledBack: false, failedStep: 'health' }, 'Update to 1.1.0 failed', '1.0.0 could not be started again.'],
    [{ status: 'failed', from: '', to: '', rolledBack: false }, 'Update to a new version failed', 'Nothing was changed: the previous version still runs.'],
  ] as const)('%o', (run, title, summary) => {
    expect(outcomeTitle(run)).toBe(title)
    if (summary) expect(outcomeSummary(run)).toBe(summary)
  })
})
