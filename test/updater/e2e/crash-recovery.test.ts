import { spawn } from 'node:child_process'
import { access, readdir, readFile } from 'node:fs/promises'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import type { HistoryEntry } from '../../../updater/shared/history'
import type { Journal } from '../../../updater/shared/journal'
import { isProcessAlive, readPidFile } from '../../../updater/shared/pidfile'
import { createFixture, createOrigin, FIXTURE_APP, OWNER, startServer, type Fixture } from '../../support/fixture-app'
import { git } from '../../support/git-fixtures'
import { repoRoot } from '../../support/paths'

// Must show 2: SIGKILL the updater at every step boundary (and once mid-build), then
// `upkeep recover`: the old or the new version serves, checkout and `current` agree, data/ intact.

let root: string
let origin: string
beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'upkeep-crash-'))
  origin = await createOrigin(root)
})
afterAll(() => rm(root, { recursive: true, force: true }))

async function expectConsistent(f: Fixture, version: string, dataBefore: Record<string, string>) {
  expect(await f.health()).toEqual({ status: 200, version })
  const manifest = JSON.parse(await readFile(path.join(f.appDir, 'current', 'upkeep-release.json'), 'utf8')) as { commit: string; version: string }
  expect(manifest.version).toBe(version)
  expect(f.head()).toBe(manifest.commit)
  expect(git(f.appDir, ['status', '--porcelain', '--untracked-files=no'])).toBe('')
  expect(await f.dataDigest()).toEqual(dataBefore)
  // Read as a plain file: root (this test) trusts only journals root wrote, and this one is the app user's.
  const journal = JSON.parse(await readFile(f.paths.journal, 'utf8')) as Journal
  expect(journal?.state).toBe('done')
  // Nothing half-built is left behind.
  expect(await readdir(path.join(f.appDir, '.upkeep', 'staging')).catch(() => [])).toEqual([])
  const worktrees = git(f.appDir, ['worktree', 'list', '--porcelain']).split('\n').filter((l) => l.startsWith('worktree '))
  expect(worktrees).toHaveLength(1)
}

async function lastHistory(f: Fixture): Promise<HistoryEntry> {
  const r = await f.upkeep(['history', '--json', '-n', '1'])
  return (JSON.parse(r.stdout) as HistoryEntry[])[0]!
}

// [kill point, target, version serving after recovery, status recorded]
const BOUNDARIES: [string, string, string, HistoryEntry['status']][] = [
  ['preflight:started', 'v1.1.0', '1.0.0', 'failed'],
  ['preflight:finished', 'v1.1.0', '1.0.0', 'failed'],
  ['backup:started', 'v1.1.0', '1.0.0', 'failed'],
  ['backup:finished', 'v1.1.0', '1.0.0', 'failed'],
  ['fetch:started', 'v1.1.0', '1.0.0', 'failed'],
  ['fetch:finished', 'v1.1.0', '1.0.0', 'failed'],
  ['build:started', 'v1.1.0', '1.0.0', 'failed'],
  ['build:finished', 'v1.1.0', '1.0.0', 'failed'],
  ['switch:started', 'v1.1.0', '1.0.0', 'rolled_back'],
  ['switch:finished', 'v1.1.0', '1.0.0', 'rolled_back'],
  ['restart:started', 'v1.1.0', '1.0.0', 'rolled_back'],
  ['restart:finished', 'v1.1.0', '1.0.0', 'rolled_back'],
  ['health:started', 'v1.1.0', '1.0.0', 'rolled_back'],
  ['health:finished', 'v1.1.0', '1.0.0', 'rolled_back'],
  ['commit:started', 'v1.1.0', '1.1.0', 'complete'],
  ['commit:finished', 'v1.1.0', '1.1.0', 'complete'],
  // A release that crashes at start, killed while it is being rolled back.
  ['rollback:started', 'v1.4.0', '1.0.0', 'rolled_back'],
  ['rollback:finished', 'v1.4.0', '1.0.0', 'rolled_back'],
]

describe('SIGKILL at every step boundary, then upkeep recover', () => {
  test.each(BOUNDARIES)('killed at %s (update to %s): %s serves afterwards', async (killAt, tag, version, status) => {
    const f = await createFixture(origin)
    try {
      const dataBefore = await f.dataDigest()
      const r = await f.upkeep(['update', tag, '--yes'], { UPKEEP_TEST_KILL_AT: killAt })
      expect(r.signal, r.stdout + r.stderr).toBe('SIGKILL')
      const rec = await f.upkeep(['recover', '--json'])
      expect(rec.code, rec.stdout + rec.stderr).toBe(0)
      await expectConsistent(f, version, dataBefore)
      const entry = await lastHistory(f)
      expect(entry).toMatchObject({ to: { tag }, status, recovered: true })
      // A second recover finds nothing to do.
      expect((await f.upkeep(['recover'])).stdout).toContain('nothing to recover')
    } finally {
      await f.stop()
    }
  })
})

describe('power cut (updater and server killed), then upkeep recover --boot before the server starts', () => {
  test.each([
    ['build:started', '1.0.0'],
    ['switch:finished', '1.0.0'],
    ['health:started', '1.0.0'],
    ['commit:started', '1.1.0'],
  ])('killed at %s: files consistent for %s, which then starts', async (killAt, version) => {
    const f = await createFixture(origin)
    try {
      const dataBefore = await f.dataDigest()
      const r = await f.upkeep(['update', 'v1.1.0', '--yes'], { UPKEEP_TEST_KILL_AT: killAt })
      expect(r.signal).toBe('SIGKILL')
      const pf = await readPidFile(f.paths.pidFile)
      if (pf) process.kill(pf.pid, 'SIGKILL')
      const rec = await f.upkeep(['recover', '--boot'])
      expect(rec.code, rec.stdout + rec.stderr).toBe(0)
      // Boot mode starts nothing: the service manager starts the server after it.
      expect(await f.health()).toBeUndefined()
      await startServer(f)
      await expectConsistent(f, version, dataBefore)
    } finally {
      await f.stop()
    }
  })
})

describe('SIGKILL in the middle of the build', () => {
  test('recover kills the orphaned build, cleans staging, and 1.0.0 keeps serving', async () => {
    const f = await createFixture(origin)
    try {
      const dataBefore = await f.dataDigest()
      await f.define((d) => ((d.build as Record<string, unknown>).env = { FIXTURE_BUILD_DELAY_MS: '30000' }))
      // Its own process group: killing the group kills the command and the worker it started (as
      // systemd kills the updater's whole cgroup); the build runs in a group of its own.
      const updater = spawn(process.execPath, [path.join(repoRoot, 'updater/bin.mjs'), '--app', FIXTURE_APP, 'update', 'v1.1.0', '--yes'], {
        cwd: f.root,
        env: f.env,
        stdio: 'ignore',
        detached: true,
      })
      const marker = path.join(f.appDir, '.upkeep', 'staging', 'v1.1.0.out', 'building.pid')
      const deadline = Date.now() + 60_000
      while (Date.now() < deadline) {
        if (await access(marker).then(() => true, () => false)) break
        await new Promise((r) => setTimeout(r, 50))
      }
      const buildPid = Number(await readFile(marker, 'utf8'))
      expect(isProcessAlive(buildPid)).toBe(true)
      process.kill(-updater.pid!, 'SIGKILL')
      await new Promise((r) => updater.once('exit', r))
      await f.define((d) => delete (d.build as Record<string, unknown>).env)
      // The build outlives the updater that started it...
      expect(isProcessAlive(buildPid)).toBe(true)
      const rec = await f.upkeep(['recover'])
      expect(rec.code, rec.stdout + rec.stderr).toBe(0)
      // ...until recovery kills its process group.
      await new Promise((r) => setTimeout(r, 200))
      expect(isProcessAlive(buildPid)).toBe(false)
      await expectConsistent(f, '1.0.0', dataBefore)
      expect(await lastHistory(f)).toMatchObject({ status: 'failed', error: { code: 'INTERRUPTED', step: 'build' }, recovered: true })
    } finally {
      await f.stop()
    }
  })
})

describe('a hung updater (no journal progress for 30 minutes)', () => {
  test('is stopped by the next update, its update marked failed (STALE) and the lock released', async () => {
    const f = await createFixture(origin)
    // A hung updater of this app runs as the app's user (the next one may stop it).
    const hung = spawn('sleep', ['600'], { stdio: 'ignore', detached: true, uid: OWNER.uid, gid: OWNER.gid })
    try {
      await new Promise((r) => hung.once('spawn', r))
      const { mkdir, writeFile } = await import('node:fs/promises')
      const { processStartTime } = await import('../../../updater/shared/pidfile')
      await mkdir(f.paths.lock)
      await writeFile(`${f.paths.lock}.owner.json`, JSON.stringify({ pid: hung.pid, start: processStartTime(hung.pid!) }))
      const old = new Date(Date.now() - 31 * 60_000).toISOString()
      await writeFile(
        f.paths.journal,
        JSON.stringify({
          schema: 1, updateId: '20261123T100000Z-0000beef', kind: 'update', trigger: 'request', pid: hung.pid, startedAt: old, updatedAt: old,
          from: { version: '1.0.0', tag: 'v1.0.0', commit: f.head(), release: path.join(f.appDir, '.upkeep/releases/v1.0.0') },
          to: { version: '1.1.0', tag: 'v1.1.0' }, options: { backup: true, force: false }, state: 'running',
          steps: [{ name: 'build', phase: 'started', startedAt: old }], recoveries: 0,
        }),
      )
      // The server sees it as interrupted (not running): a new request is accepted.
      const { updateActivity } = await import('../../../updater/shared/update-activity')
      expect(await updateActivity(f.paths)).toMatchObject({ state: 'interrupted', stale: true })
      const r = await f.upkeep(['update', 'v1.1.0', '--yes', '--json'])
      expect(r.code, r.stderr).toBe(0)
      expect(JSON.parse(r.stdout)).toMatchObject({ status: 'complete', recovered: { id: '20261123T100000Z-0000beef', status: 'failed', error: { code: 'STALE' }, recovered: true } })
      expect(isProcessAlive(hung.pid!)).toBe(false)
      expect(await f.health()).toEqual({ status: 200, version: '1.1.0' })
    } finally {
      hung.kill('SIGKILL')
      await f.stop()
    }
  })
})
