import { execFileSync } from 'node:child_process'
import { chmod, mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import type { HistoryEntry } from '../../../updater/shared/history'
import { createFixture, createOrigin, FIXTURE_APP, type Fixture } from '../../support/fixture-app'
import { repoRoot } from '../../support/paths'
import { run } from '../../support/run'

// The updater as an install runs it: the esbuild bundle (`node current/upkeep.mjs`).
describe('the built updater bundle', () => {
  let root: string
  let bundle: string
  let f: Fixture
  beforeAll(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'upkeep-built-'))
    // The fixture's owner (nobody) reaches its origin through here.
    await chmod(root, 0o755)
    execFileSync('npm', ['run', 'build', '--silent', '--', '--out', path.join(root, 'build')], { cwd: repoRoot, stdio: ['ignore', 'ignore', 'inherit'] })
    bundle = path.join(root, 'build', 'upkeep.mjs')
    f = await createFixture(await createOrigin(path.join(root, 'fixture')))
  }, 180_000)
  afterAll(async () => {
    await f?.stop()
    await rm(root, { recursive: true, force: true })
  })

  test('runs from its own copy and ignores the test-only kill hook', async () => {
    const r = await run(process.execPath, [bundle, '--app', FIXTURE_APP, 'update', 'v1.1.0', '--yes', '--json'], {
      cwd: f.root,
      env: { ...f.env, UPKEEP_TEST_KILL_AT: 'build:started' },
      timeoutMs: 120_000,
    })
    expect(r.signal).toBeNull()
    expect(r.code, r.stderr).toBe(0)
    expect((JSON.parse(r.stdout) as HistoryEntry).status).toBe('complete')
    expect(await f.health()).toEqual({ status: 200, version: '1.1.0' })
    // Run by root, the copies live in root's own directory, not in a checkout another user owns.
    expect((await readdir(path.join(path.dirname(f.paths.stateDir), '.updater'))).filter((n) => n.endsWith('.mjs'))).toHaveLength(1)
  })
})
