import { rm } from 'node:fs/promises'
import { afterEach, describe, expect, test } from 'vitest'
import type { Step, StepContext } from '../../updater/context'
import { recoverJournal, runUpdate } from '../../updater/run'
import { UpdateError } from '../../updater/shared/errors'
import type { Journal, StepName } from '../../updater/shared/journal'
import { waitHealthy } from '../../updater/steps/health'
import { fakeClock, fakeDeps, fakeServices } from '../support/fake-deps'

const dirs: string[] = []
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true })
})

/** A step that notes itself, and what the journal said when it ran. */
function step(name: StepName, transcript: string[], run?: (ctx: StepContext) => Promise<void>): Step {
  return {
    name,
    async run(ctx) {
      const persisted = await ctx.journal.read()
      const last = persisted!.steps.at(-1)!
      transcript.push(`${name} (journal: ${last.name} ${last.phase})`)
      await run?.(ctx)
    },
  }
}

const plan = { updateId: '20261123T100000Z-00000001', kind: 'update' as const, trigger: 'cli' as const, tag: 'v1.1.0', options: { backup: true, force: false } }

async function setup(over = {}) {
  const f = await fakeDeps(over)
  dirs.push(f.dir)
  return f
}

describe('runUpdate (fake deps)', () => {
  test('journals every step as started before it runs, and finishes with history, journal and status', async () => {
    const f = await setup()
    const names: StepName[] = ['preflight', 'backup', 'fetch', 'build', 'switch', 'restart', 'health', 'commit']
    const result = await runUpdate(f.deps, plan, names.map((n) => step(n, f.transcript)))
    expect(result.outcome).toBe('complete')
    expect(f.transcript).toEqual([...names.map((n) => `${n} (journal: ${n} started)`), 'lock released'])
    const writes = f.journal.writes.map((w) => `${w.steps.at(-1)?.name ?? '-'}:${w.steps.at(-1)?.phase ?? '-'}:${w.state}`)
    expect(writes[0]).toBe('-:-:running')
    expect(writes.at(-1)).toBe('commit:finished:done')
    expect(f.history.entries).toMatchObject([{ id: plan.updateId, status: 'complete', to: { tag: 'v1.1.0' } }])
    expect(f.status.events.map((e) => e.type)).toEqual(['update-started', ...names.flatMap(() => ['step-started', 'step-finished']), 'finished'])
    expect(f.status.events.map((e) => e.id)).toEqual(f.status.events.map((_, i) => i + 1))
  })

  test('a failure before the switch stops: staging cleaned, no service touched, recorded failed', async () => {
    const f = await setup()
    const failing = step('build', f.transcript, async () => {
      throw new UpdateError('BUILD_FAILED', 'build failed: npm ci exited 1; output:\nnpm ERR! missing script')
    })
    const result = await runUpdate(f.deps, plan, [step('preflight', f.transcript), failing, step('switch', f.transcript), step('restart', f.transcript)])
    expect(result.outcome).toBe('failed')
    expect(result.entry.error).toMatchObject({ code: 'BUILD_FAILED', step: 'build' })
    expect(f.transcript).toContain('git worktree remove v1.1.0')
    expect(f.transcript.filter((t) => t.startsWith('services') || t.startsWith('switch'))).toEqual([])
    expect((await f.journal.read())!.state).toBe('done')
  })

  test('a failure after the switch rolls back: services stopped and started, old version health-checked', async () => {
    let serving = '1.1.0'
    const f = await setup({ health: async () => ({ status: 200, version: serving }) })
    const result = await runUpdate(f.deps, plan, [
      step('switch', f.transcript),
      step('health', f.transcript, async () => {
        serving = '0.0.0-dev'
        throw new UpdateError('HEALTH_CHECK_FAILED', 'v1.1.0 is not running')
      }),
    ])
    expect(result.outcome).toBe('rolled_back')
    expect(result.entry.error?.code).toBe('HEALTH_CHECK_FAILED')
    expect(result.entry.steps.map((s) => `${s.name}:${s.status}`)).toEqual(['switch:finished', 'health:failed', 'rollback:finished'])
  })

  test('no journal progress for the stale limit: the step is stopped and the update fails with STALE', async () => {
    const clock = fakeClock()
    const f = await setup({ clock, watchdogMs: 5, tunables: { healthTimeoutMs: 5000, backupKeep: 5, staleAfterMs: 30 * 60_000 } })
    const hung = step('build', f.transcript, (ctx) => {
      clock.advance(31 * 60_000)
      return new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(new Error('killed'))))
    })
    const result = await runUpdate(f.deps, plan, [hung])
    expect(result.outcome).toBe('failed')
    expect(result.entry.error).toMatchObject({ code: 'STALE', message: 'no progress for 30 minutes' })
    expect(f.transcript.at(-1)).toBe('lock released')
  })

  test('SIGTERM (the interrupt signal) stops the running step: INTERRUPTED', async () => {
    const ac = new AbortController()
    const f = await setup({ signal: ac.signal })
    const waiting = step('fetch', f.transcript, (ctx) => {
      setTimeout(() => ac.abort(), 5)
      return new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(new Error('aborted'))))
    })
    const result = await runUpdate(f.deps, plan, [waiting])
    expect(result.entry.error?.code).toBe('INTERRUPTED')
  })

  test('an unfinished journal is recovered before the new update starts', async () => {
    const stuck: Journal = {
      schema: 1, updateId: '20261123T090000Z-00000000', kind: 'update', trigger: 'request', pid: 999999, startedAt: '2026-11-23T09:00:00Z', updatedAt: '2026-11-23T09:00:01Z',
      from: { version: '1.0.0' }, to: { version: '1.1.0', tag: 'v1.1.0' }, options: { backup: true, force: false }, state: 'running',
      steps: [{ name: 'build', phase: 'started', startedAt: '2026-11-23T09:00:01Z' }], recoveries: 0,
    }
    const f = await fakeDeps({}, stuck)
    dirs.push(f.dir)
    const result = await runUpdate(f.deps, plan, [step('preflight', f.transcript)])
    expect(result.recovered).toMatchObject({ action: 'clean-up', updateId: stuck.updateId })
    expect(f.history.entries.map((e) => [e.id, e.status, e.error?.code, e.recovered])).toEqual([
      [stuck.updateId, 'failed', 'INTERRUPTED', true],
      [plan.updateId, 'complete', undefined, undefined],
    ])
  })

  test('loop guard: after 3 recoveries it gives up, records failed and says what to do by hand', async () => {
    const stuck = {
      schema: 1, updateId: '20261123T090000Z-00000000', kind: 'update', trigger: 'cli', pid: 999999, startedAt: '2026-11-23T09:00:00Z', updatedAt: '2026-11-23T09:00:01Z',
      from: { version: '1.0.0', release: '/srv/app/.upkeep/releases/v1.0.0', commit: 'abc' }, to: { version: '1.1.0', tag: 'v1.1.0' },
      options: { backup: true, force: false }, state: 'rolling_back', steps: [{ name: 'rollback', phase: 'started', startedAt: '' }], recoveries: 3,
      backup: { path: '/srv/app/backups/upkeep-1.0.0-x.tar.gz', manifest: '' },
    } as Journal
    const f = await fakeDeps({}, stuck)
    dirs.push(f.dir)
    const r = await recoverJournal(f.deps, (await f.journal.read())!, 'live')
    expect(r.action).toBe('give-up')
    expect(r.entry).toMatchObject({ status: 'failed', error: { code: 'RECOVERY_GAVE_UP' }, recovered: true })
    expect(r.entry!.error!.hint).toContain('tar xzf')
    expect(f.transcript).toEqual([])
    expect((await f.journal.read())!.state).toBe('done')
  })
})

describe('waitHealthy', () => {
  async function ctxWith(state: Parameters<typeof fakeServices>[1], health: () => Promise<{ status: number; version?: string } | undefined>) {
    const f = await setup({ services: fakeServices([], state), health })
    dirs.push(f.dir)
    return { ...f.deps, j: {} as Journal, save: async () => {}, touch: async () => {}, emit: async () => {}, signal: new AbortController().signal } as StepContext
  }

  test('a server that exited fails at once, with its exit status and last log lines', async () => {
    const ctx = await ctxWith({ active: 'failed', exitStatus: 1 }, async () => undefined)
    const t0 = ctx.clock.now().getTime()
    await expect(waitHealthy(ctx, { version: '1.4.0', step: 'health' })).rejects.toMatchObject({ code: 'HEALTH_CHECK_FAILED', message: '1.4.0 is not running: the server exited with status 1; output:\nlast log line' })
    expect(ctx.clock.now().getTime() - t0).toBeLessThan(1000)
  })

  test('a server that answers the old version (or 503) until the timeout fails then, saying what it last saw', async () => {
    const ctx = await ctxWith({}, async () => ({ status: 503, version: '1.3.0' }))
    await expect(waitHealthy(ctx, { version: '1.3.0', step: 'health' })).rejects.toMatchObject({
      code: 'HEALTH_CHECK_FAILED',
      message: '1.3.0 did not become healthy within 5 s (http://127.0.0.1:8080/api/health, last answer: HTTP 503, version 1.3.0; expected HTTP 200)',
    })
  })

  test('an answer with the right status but no version fails soon, saying exactly that, with the fix', async () => {
    const ctx = await ctxWith({}, async () => ({ status: 200, versionProblem: 'its body has no version at JSON pointer /version (body: {"status":"UP"})' }))
    const t0 = ctx.clock.now().getTime()
    const err = (await waitHealthy(ctx, { version: '1.1.0', step: "health" }).catch((e: unknown) => e)) as { code: string; message: string; hint: string }
    expect(err).toMatchObject({ code: 'HEALTH_CHECK_FAILED', message: 'http://127.0.0.1:8080/api/health answers HTTP 200 but reports no version: its body has no version at JSON pointer /version (body: {"status":"UP"})' })
    expect(err.hint).toContain('"health.version"')
    expect(ctx.clock.now().getTime() - t0).toBeLessThan(5000)
  })

  test('an answer with another version until the timeout says which version it saw', async () => {
    const ctx = await ctxWith({}, async () => ({ status: 200, version: '1.0.0' }))
    const err = (await waitHealthy(ctx, { version: '1.1.0', step: "health" }).catch((e: unknown) => e)) as { code: string; message: string; hint: string }
    expect(err).toMatchObject({ code: 'HEALTH_CHECK_FAILED', message: 'http://127.0.0.1:8080/api/health answers HTTP 200 with version 1.0.0, not 1.1.0, after 5 s' })
    expect(err.hint).toContain('still runs other code')
  })

  test('without a version to recognise, the expected status after the restart is enough', async () => {
    const f = await fakeDeps()
    dirs.push(f.dir)
    const ctx = { ...f.deps, app: { ...f.deps.app, health: { ...f.deps.app.health, version: { kind: 'none' as const } } }, health: async () => ({ status: 200 }), j: {} as Journal, save: async () => {}, touch: async () => {}, emit: async () => {}, signal: new AbortController().signal } as StepContext
    expect(await waitHealthy(ctx, { version: '1.1.0', step: 'health' })).toMatchObject({ polls: 1 })
  })

  test('only the target version counts', async () => {
    let n = 0
    const ctx = await ctxWith({}, async () => (++n < 3 ? { status: 200, version: '1.0.0' } : { status: 200, version: '1.1.0' }))
    expect(await waitHealthy(ctx, { version: 'v1.1.0', step: 'health' })).toMatchObject({ polls: 3 })
  })
})

describe('recordUnstarted', () => {
  test('a request that could not start is recorded under its id, in history and the status stream', async () => {
    const { recordUnstarted } = await import('../../updater/run')
    const f = await setup()
    const entry = await recordUnstarted(f.deps, { ...plan, trigger: 'request', tag: undefined }, { code: 'NO_RELEASE', message: 'origin has no release tags' })
    expect(entry).toMatchObject({ id: plan.updateId, status: 'failed', error: { code: 'NO_RELEASE' } })
    expect(f.history.entries).toHaveLength(1)
    expect(f.status.events.map((e) => [e.type, e.updateId])).toEqual([
      ['update-started', plan.updateId],
      ['finished', plan.updateId],
    ])
    expect(f.transcript).toEqual(['lock released'])
  })
})
