import { rm } from 'node:fs/promises'
import { afterEach, describe, expect, test } from 'vitest'
import { eventForAttempt } from '../../server/services/auto-update/history-events'
import type { ServiceManager, ServiceState } from '../../updater/adapters/service-manager'
import type { Step } from '../../updater/context'
import { runUpdate, stepsOf, UPDATE_STEPS } from '../../updater/run'
import type { StepName } from '../../updater/shared/journal'
import { soak } from '../../updater/steps/soak'
import { fakeClock, fakeDeps } from '../support/fake-deps'

// Must show 2 with a controllable clock: the fake clock moves only when the soak sleeps, so two
// minutes of watching take milliseconds, and "2 minutes after health" is exact.

const dirs: string[] = []
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true })
})

const MIN = 60_000
const plan = { updateId: '20261203T020000Z-a1b2c3d4', kind: 'update' as const, trigger: 'auto' as const, tag: 'v1.1.0', options: { backup: false, force: false } }

/** A service whose state the test scripts by time: it crashes or restarts at given moments, and a start brings it back. */
function scriptedService(transcript: string[]) {
  let state: ServiceState = { active: 'active', subState: 'running', mainPid: 100, restarts: 0, exitStatus: undefined }
  const at: { t: number; change: (s: ServiceState) => ServiceState }[] = []
  let clock: { now(): Date } = { now: () => new Date() }
  const services: ServiceManager = {
    kind: 'systemd',
    units: ['widget.service'],
    restart: async () => void transcript.push('services restart'),
    start: async () => {
      transcript.push('services start')
      state = { active: 'active', subState: 'running', mainPid: state.mainPid ?? 200, restarts: state.restarts, exitStatus: undefined }
    },
    stop: async () => void transcript.push('services stop'),
    async state() {
      while (at[0] && at[0].t <= clock.now().getTime()) state = at.shift()!.change(state)
      return { ...state }
    },
    recentLogs: async () => ['panic: nil map'],
  }
  return {
    services,
    useClock: (c: { now(): Date }) => void (clock = c),
    /** From `t` on, the state is `change(state)`. */
    at: (t: number, change: (s: ServiceState) => ServiceState) => at.push({ t, change }),
  }
}

/** A stand-in for the steps before the soak (their own tests are elsewhere), noting itself. */
const noted = (name: StepName, transcript: string[]): Step => ({ name, run: async () => void transcript.push(name) })

async function setup(soakMs: number, health: () => Promise<{ status: number; version?: string } | undefined> = async () => ({ status: 200, version: '1.1.0' })) {
  const transcript: string[] = []
  const svc = scriptedService(transcript)
  const clock = fakeClock(new Date('2026-12-03T02:00:00Z'))
  svc.useClock(clock)
  const f = await fakeDeps({ services: svc.services, clock, health })
  dirs.push(f.dir)
  f.deps.app = { ...f.deps.app, health: { ...f.deps.app.health, soakMs } }
  const steps = [noted('switch', transcript), noted('restart', transcript), noted('health', transcript), soak, noted('commit', transcript)]
  return { f, svc, clock, transcript, steps, t0: clock.now().getTime() }
}

describe('the soak step (fake clock)', () => {
  test('it runs after health and before commit, only when the definition sets a soak', () => {
    const names = (s: Step[]) => s.map((x) => x.name)
    expect(names(UPDATE_STEPS)).toEqual(['preflight', 'backup', 'fetch', 'build', 'switch', 'restart', 'health', 'soak', 'commit'])
    expect(names(stepsOf('update', { health: { soakMs: 0 } } as never))).not.toContain('soak')
    expect(names(stepsOf('update', { health: { soakMs: 120_000 } } as never))).toContain('soak')
    expect(names(stepsOf('rollback', { health: { soakMs: 120_000 } } as never))).not.toContain('soak')
  })

  test('a release that passes health and crashes 2 minutes later is rolled back during the soak, and history says so', async () => {
    const s = await setup(5 * MIN)
    s.svc.at(s.t0 + 2 * MIN, (st) => ({ ...st, active: 'failed', subState: 'failed', mainPid: undefined, exitStatus: 2 }))
    const result = await runUpdate(s.f.deps, plan, s.steps)
    expect(result.outcome).toBe('rolled_back')
    expect(result.entry.trigger).toBe('auto')
    expect(result.entry.error).toMatchObject({ code: 'HEALTH_CHECK_FAILED', step: 'soak', message: '1.1.0 crashed during soak, 120 s after passing its health check: widget.service exited with status 2; output:\npanic: nil map' })
    expect(result.entry.steps.map((x) => `${x.name}:${x.status}`)).toEqual(['switch:finished', 'restart:finished', 'health:finished', 'soak:failed', 'rollback:finished'])
    // Never committed: the commit step did not run.
    expect(s.transcript).not.toContain('commit')
    // The notification of this attempt says "during soak".
    expect(eventForAttempt('widget', result.entry)).toMatchObject({ event: 'update-rolled-back', detail: 'during soak', trigger: 'auto' })
    // Watched for 2 minutes of the fake clock, with progress on the way.
    const progress = s.f.status.events.filter((e) => e.type === 'progress' && e.step === 'soak')
    expect(progress.length).toBeGreaterThan(10)
    expect(progress.at(-1)).toMatchObject({ unit: 'percent', total: 100 })
  })

  test('a release that crashes after the soak is committed: the crash is its own, not the update’s', async () => {
    const s = await setup(1 * MIN)
    s.svc.at(s.t0 + 2 * MIN, (st) => ({ ...st, active: 'failed', subState: 'failed', mainPid: undefined, exitStatus: 2 }))
    const result = await runUpdate(s.f.deps, plan, s.steps)
    expect(result.outcome).toBe('complete')
    expect(result.entry.steps.map((x) => `${x.name}:${x.status}`)).toEqual(['switch:finished', 'restart:finished', 'health:finished', 'soak:finished', 'commit:finished'])
    expect(s.transcript).toContain('commit')
    // Two minutes after health it crashes; the update had ended a minute earlier, and nothing rolls it back.
    s.clock.advance(2 * MIN)
    expect((await s.f.deps.services.state()).active).toBe('failed')
    expect(s.f.history.entries.map((e) => [e.id, e.status])).toEqual([[plan.updateId, 'complete']])
    expect(s.transcript).not.toContain('services stop')
    expect(eventForAttempt('widget', result.entry)).toMatchObject({ event: 'update-completed' })
  })

  test('a restart loop (systemd restarting the unit) is recognised as one', async () => {
    const s = await setup(5 * MIN)
    s.svc.at(s.t0 + 30_000, (st) => ({ ...st, subState: 'auto-restart', restarts: 1, mainPid: undefined }))
    s.svc.at(s.t0 + 31_000, (st) => ({ ...st, subState: 'running', restarts: 2, mainPid: 101 }))
    const result = await runUpdate(s.f.deps, plan, s.steps)
    expect(result.outcome).toBe('rolled_back')
    expect(result.entry.error?.message).toMatch(/^1\.1\.0 restarts in a loop during soak: restarted 1 time within 30 s of passing its health check: widget\.service is active \(auto-restart\)/)
  })

  test('restarts counted between two looks are named', async () => {
    const s = await setup(5 * MIN)
    s.svc.at(s.t0 + 45_000, (st) => ({ ...st, restarts: 3, mainPid: 103 }))
    const result = await runUpdate(s.f.deps, plan, s.steps)
    expect(result.entry.error?.message).toMatch(/^1\.1\.0 restarts in a loop during soak: restarted 3 times within 45 s/)
  })

  test('health failing several times in a row fails the soak; one slow answer does not', async () => {
    let n = 0
    let failFrom = Infinity
    const s = await setup(3 * MIN, async () => {
      n++
      if (n === 10) return undefined // one lost answer
      return s.clock.now().getTime() >= failFrom ? { status: 503, version: '1.1.0' } : { status: 200, version: '1.1.0' }
    })
    failFrom = s.t0 + 90_000
    const result = await runUpdate(s.f.deps, plan, s.steps)
    expect(result.outcome).toBe('rolled_back')
    expect(result.entry.error).toMatchObject({ code: 'HEALTH_CHECK_FAILED', step: 'soak' })
    expect(result.entry.error?.message).toMatch(/^1\.1\.0 failed its health check \d+ times in a row during soak \(http:\/\/127\.0\.0\.1:8080\/api\/health, last answer: HTTP 503, version 1\.1\.0; expected HTTP 200 with version 1\.1\.0\)$/)
    // Given up after 5 s of failures, not at the first one.
    const failedAt = Date.parse(s.f.history.entries[0]!.finishedAt)
    expect(failedAt - failFrom).toBeGreaterThanOrEqual(5000)
    expect(failedAt - failFrom).toBeLessThan(10_000)
  })

  test('another version answering during the soak counts as failing health (something else took its place)', async () => {
    const s = await setup(2 * MIN, async () => (s.clock.now().getTime() >= s.t0 + MIN ? { status: 200, version: '1.0.0' } : { status: 200, version: '1.1.0' }))
    const result = await runUpdate(s.f.deps, plan, s.steps)
    expect(result.outcome).toBe('rolled_back')
    expect(result.entry.error?.message).toContain('last answer: HTTP 200, version 1.0.0')
  })

  test('a healthy release is committed after exactly the soak time', async () => {
    const s = await setup(2 * MIN)
    const result = await runUpdate(s.f.deps, plan, s.steps)
    expect(result.outcome).toBe('complete')
    const soakStep = (await s.f.journal.read())!.steps.find((x) => x.name === 'soak')!
    expect(soakStep.detail).toMatchObject({ soakedMs: 2 * MIN })
  })
})
