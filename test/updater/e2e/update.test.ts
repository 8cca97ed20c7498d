import { readFile, stat } from 'node:fs/promises'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import type { HistoryEntry } from '../../../updater/shared/history'
import { createFixture, createOrigin, type Fixture } from '../../support/fixture-app'
import { git } from '../../support/git-fixtures'

// Must show 1: the real updater (from the sources) against a real server in process mode.
describe('upkeep update against a real app (process mode)', () => {
  let root: string
  let f: Fixture

  beforeAll(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'upkeep-e2e-'))
    const origin = await createOrigin(root)
    f = await createFixture(origin)
  })
  afterAll(async () => {
    await f?.stop()
    await rm(root, { recursive: true, force: true })
  })

  const tagCommit = (tag: string) => git(f.appDir, ['rev-parse', `${tag}^{commit}`])

  test('1.0.0 → 1.1.0 lands: new version serves, checkout and current agree, old build kept as server.bak', async () => {
    const r = await f.upkeep(['update', 'v1.1.0', '--yes'])
    expect(r.stderr + r.stdout).toContain('Done')
    expect(r.code).toBe(0)
    expect(await f.health()).toEqual({ status: 200, version: '1.1.0' })
    expect(await f.currentTarget()).toBe('.upkeep/releases/v1.1.0')
    expect(f.head()).toBe(tagCommit('v1.1.0'))
    const bak = await (await import('node:fs/promises')).readlink(path.join(f.appDir, 'server.bak'))
    expect(bak).toBe('.upkeep/releases/v1.0.0')
    // git and npm ran as the checkout's owner: the release is theirs, not root's.
    expect((await stat(path.join(f.appDir, '.upkeep/releases/v1.1.0/app.mjs'))).uid).toBe(65534)
  })

  test('1.2.0 fails with BUILD_FAILED and 1.1.0 never stops serving', async () => {
    const seen: string[] = []
    let polling = true
    const poller = (async () => {
      while (polling) {
        const h = await f.health()
        seen.push(h ? `${h.status} ${h.version}` : 'down')
        await new Promise((r) => setTimeout(r, 20))
      }
    })()
    const before = f.head()
    const r = await f.upkeep(['update', 'v1.2.0', '--yes', '--json'])
    polling = false
    await poller
    expect(r.code).toBe(1)
    const entry = JSON.parse(r.stdout) as HistoryEntry
    expect(entry.status).toBe('failed')
    expect(entry.error?.code).toBe('BUILD_FAILED')
    // The error keeps the tail of the build's output.
    expect(entry.error?.message).toContain("error TS2322: Type 'string' is not assignable")
    expect(seen.length).toBeGreaterThan(5)
    expect(new Set(seen)).toEqual(new Set(['200 1.1.0']))
    expect(f.head()).toBe(before)
    expect(await f.currentTarget()).toBe('.upkeep/releases/v1.1.0')
  })

  test.each([
    ['v1.3.0', 'never becomes healthy'],
    ['v1.4.0', 'crashes at start'],
  ])('%s (%s) rolls back to 1.1.0 by itself and restores its data', async (tag) => {
    const dataBefore = await f.dataDigest()
    const r = await f.upkeep(['update', tag, '--yes', '--json'])
    expect(r.code, r.stderr).toBe(3)
    const entry = JSON.parse(r.stdout) as HistoryEntry
    expect(entry.status).toBe('rolled_back')
    expect(entry.error?.code).toBe('HEALTH_CHECK_FAILED')
    expect(await f.health()).toEqual({ status: 200, version: '1.1.0' })
    expect(await f.currentTarget()).toBe('.upkeep/releases/v1.1.0')
    expect(f.head()).toBe(tagCommit('v1.1.0'))
    // The failed version migrated data/; rollback restored the backup and kept its data aside.
    expect(await f.dataDigest()).toEqual(dataBefore)
    expect(entry.dataAside).toBeDefined()
    expect(await readFile(path.join(entry.dataAside!, 'data', 'schema-version'), 'utf8')).toBe('2\n')
    expect(await readFile(path.join(entry.dataAside!, 'data', 'notes.txt'), 'utf8')).toContain(`migrated by ${tag.slice(1)}`)
  })

  test('history shows all of it', async () => {
    const r = await f.upkeep(['history', '--json'])
    expect(r.code).toBe(0)
    const entries = JSON.parse(r.stdout) as HistoryEntry[]
    expect(entries.map((e) => [e.to.tag, e.status, e.error?.code])).toEqual([
      ['v1.4.0', 'rolled_back', 'HEALTH_CHECK_FAILED'],
      ['v1.3.0', 'rolled_back', 'HEALTH_CHECK_FAILED'],
      ['v1.2.0', 'failed', 'BUILD_FAILED'],
      ['v1.1.0', 'complete', undefined],
    ])
    for (const e of entries) expect(e.steps[0]).toMatchObject({ name: 'preflight', status: 'finished' })
    const table = await f.upkeep(['history'])
    expect(table.stdout).toMatch(/1\.1\.0 → 1\.4\.0\s+rolled_back/)
  })
})

describe('upkeep rollback', () => {
  let root: string
  let f: Fixture
  beforeAll(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'upkeep-rb-'))
    f = await createFixture(await createOrigin(root))
  })
  afterAll(async () => {
    await f?.stop()
    await rm(root, { recursive: true, force: true })
  })

  test('goes back to server.bak and its ref, and can go forward again', async () => {
    const nothing = await f.upkeep(['rollback', '--yes', '--json'])
    expect(nothing.code).toBe(1)
    expect(JSON.parse(nothing.stdout).error).toMatchObject({ code: 'NOT_FOUND', message: 'there is no previous build (server.bak) to roll back to' })
    const v100 = f.head()
    expect((await f.upkeep(['update', 'v1.1.0', '--yes'])).code).toBe(0)
    const v110 = f.head()
    const r = await f.upkeep(['rollback', '--yes', '--json'])
    expect(r.code, r.stderr).toBe(0)
    expect(JSON.parse(r.stdout)).toMatchObject({ kind: 'rollback', status: 'complete', from: { version: '1.1.0' }, to: { version: '1.0.0', tag: 'v1.0.0' } })
    expect(await f.health()).toEqual({ status: 200, version: '1.0.0' })
    expect(await f.currentTarget()).toBe('.upkeep/releases/v1.0.0')
    expect(f.head()).toBe(v100)
    // Reversible: server.bak is now the build it came from.
    expect((await f.upkeep(['rollback', '--yes'])).code).toBe(0)
    expect(await f.health()).toEqual({ status: 200, version: '1.1.0' })
    expect(f.head()).toBe(v110)
  })
})
