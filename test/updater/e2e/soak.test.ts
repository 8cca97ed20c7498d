import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import type { HistoryEntry } from '../../../updater/shared/history'
import { createFixture, createOrigin, type Fixture } from '../../support/fixture-app'

// Must show 2 for real: the real updater (from the sources) against the fixture app in process
// mode. Its v1.5.0 answers its health check, then exits a few seconds after it started answering.

/** Waits until `check` holds, polling; fails with `what` after `timeoutMs`. */
async function until(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check()) return
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`timed out waiting for ${what}`)
}

describe('the soak, for real (process mode)', () => {
  let root: string
  let f: Fixture

  beforeAll(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'upkeep-soak-'))
    // A soak far longer than the 3 s v1.5.0 lives: it cannot end before the crash.
    f = await createFixture(await createOrigin(root, { crashLater: true }), { soakSec: 30 })
  }, 120_000)
  afterAll(async () => {
    await f?.stop()
    await rm(root, { recursive: true, force: true })
  })

  test('v1.5.0 passes health, crashes during the soak and is rolled back by itself', async () => {
    const r = await f.upkeep(['update', 'v1.5.0', '--yes', '--json'])
    expect(r.code, r.stderr).toBe(3)
    const entry = JSON.parse(r.stdout) as HistoryEntry
    expect(entry).toMatchObject({ status: 'rolled_back', to: { version: '1.5.0' }, error: { code: 'HEALTH_CHECK_FAILED', step: 'soak' } })
    expect(entry.error!.message).toMatch(/^1\.5\.0 crashed during soak, \d+ s after passing its health check: the app exited with status 3; output:\n/)
    expect(entry.error!.message).toContain('fatal: lost the connection to its database')
    expect(entry.steps.map((s) => `${s.name}:${s.status}`)).toEqual([
      'preflight:finished',
      'backup:finished',
      'fetch:finished',
      'build:finished',
      'switch:finished',
      'restart:finished',
      'health:finished',
      'soak:failed',
      'rollback:finished',
    ])
    // The previous version serves again.
    expect(await f.health()).toEqual({ status: 200, version: '1.0.0' })
    expect(await f.currentTarget()).toBe('.upkeep/releases/v1.0.0')
  })

  test('with a soak shorter than its life, v1.5.0 is committed; its later crash is not rolled back, and history says so', async () => {
    await f.define((d) => {
      ;(d.health as Record<string, unknown>).soakSeconds = 1
      ;(d.run as { command: { env: Record<string, string> } }).command.env.FIXTURE_CRASH_AFTER_MS = '8000'
    })
    const r = await f.upkeep(['update', 'v1.5.0', '--yes', '--json'])
    expect(r.code, r.stderr).toBe(0)
    const entry = JSON.parse(r.stdout) as HistoryEntry
    expect(entry.status).toBe('complete')
    expect(entry.steps.map((s) => `${s.name}:${s.status}`)).toContain('soak:finished')
    expect(await f.health()).toEqual({ status: 200, version: '1.5.0' })
    // It dies later; nothing rolls it back: the update had been committed.
    await until('v1.5.0 to exit', async () => (await f.health()) === undefined)
    expect(await f.currentTarget()).toBe('.upkeep/releases/v1.5.0')
    const history = JSON.parse((await f.upkeep(['history', '--json'])).stdout) as HistoryEntry[]
    expect(history.map((e) => [e.to.version, e.status, e.error?.step])).toEqual([
      ['1.5.0', 'complete', undefined],
      ['1.5.0', 'rolled_back', 'soak'],
    ])
  })
})
