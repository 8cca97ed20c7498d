import { chown, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import type { CheckReport } from '../../../updater/adopt/check-app'
import { createFixture, createOrigin, OWNER, type Fixture } from '../../support/fixture-app'

// `upkeep app …` through the real CLI on a host without systemd (this one): usage errors, the
// refusal to adopt without systemd, and `upkeep app check` of the fixture app, which runs as
// nobody from the process service manager, its checks run as nobody in a worker. The systemd side
// (add, drop-ins, units) is test/deploy/app-adopt.test.ts.

let root: string
let f: Fixture
beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'upkeep-app-cli-'))
  f = await createFixture(await createOrigin(root))
}, 120_000)
afterAll(async () => {
  await f?.stop()
  await rm(root, { recursive: true, force: true })
})

const check = async () => {
  const r = await f.upkeep(['app', 'check', 'fixture', '--json'])
  return { code: r.code, report: JSON.parse(r.stdout) as CheckReport, stderr: r.stderr }
}

describe('usage errors exit 2 with the command’s usage', () => {
  test.each([
    [[], /say what to do: upkeep app add\|check\|list\|show\|remove/],
    [['frob'], /unknown app command "frob"/],
    [['add'], /name the checkout: upkeep app add \/srv\/myapp/],
    [['add', '/srv/notes', '--health-version', 'bogus'], /--health-version takes none, json:\/pointer, regex:RE or header:NAME, got "bogus"/],
    [['add', '/srv/notes', '--build-command', 'sh build.sh'], /--build-command takes a JSON list of strings/],
    [['check'], /name the app: upkeep app check NAME/],
    [['remove', 'upkeep'], /Upkeep itself cannot be removed this way/],
  ])('upkeep app %j', async (args, message) => {
    const r = await f.upkeep(['app', ...args])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(message)
    expect(r.stderr).toContain('Usage: upkeep app add|check|list|show|remove')
  })
})

test('upkeep app add on a host without systemd: refused, saying how to add the app by hand', async () => {
  const r = await f.upkeep(['app', 'add', f.appDir, '--health-url', `http://127.0.0.1:${f.port}/api/health`])
  expect(r.code).toBe(1)
  expect(r.stderr).toContain('upkeep: BAD_CONFIG: upkeep app add finds the units that run the app, and this host does not run systemd')
  expect(r.stderr).toContain('hint: Without systemd, write')
})

describe('upkeep app check of an app run by the process manager', () => {
  test('every precondition passes; the running version comes from current when nothing is recorded', async () => {
    const { code, report } = await check()
    expect(report.checks.filter((c) => !c.ok)).toEqual([])
    expect(code).toBe(0)
    expect(report).toMatchObject({ app: 'fixture', user: OWNER.name, ok: true })
    // No systemd: no units to check.
    expect(report.checks.map((c) => c.id)).toEqual(['definition', 'user', 'checkout', 'owner', 'clean', 'layout', 'remote', 'toolchain', 'state-dir', 'backup-dir', 'data', 'health'])
    expect(report.checks.at(-1)!.message).toBe(`http://127.0.0.1:${f.port}/api/health answers HTTP 200 with version 1.0.0, the running version`)
    const text = await f.upkeep(['app', 'check', 'fixture'])
    expect(text.stdout).toContain('All 12 checks passed: fixture can be updated.')
  }, 60_000)

  test('health answering 200 with no version where the definition looks: says exactly that', async () => {
    await f.define((d) => ((d.health as Record<string, unknown>).version = { jsonPointer: '/build/version' }))
    try {
      const { code, report } = await check()
      expect(code).toBe(1)
      expect(report.checks.filter((c) => !c.ok)).toEqual([
        {
          id: 'health',
          ok: false,
          message: expect.stringMatching(new RegExp(`^http://127\\.0\\.0\\.1:${f.port}/api/health answers HTTP 200 but reports no version: its body has no version at JSON pointer /build/version \\(body: \\{"status":"ok","version":"1\\.0\\.0"`)),
          fix: `Point "health.version" at where the app reports its version: upkeep app add ${f.appDir} --health-version json:/POINTER --yes (or regex:RE, header:NAME; none when it reports none)`,
        },
      ])
    } finally {
      await f.define((d) => ((d.health as Record<string, unknown>).version = { jsonPointer: '/version' }))
    }
  }, 60_000)

  test('health answering 200 with another version than the recorded one: says exactly that', async () => {
    const file = path.join(f.paths.stateDir, 'update-installed.json')
    await writeFile(file, JSON.stringify({ version: '1.1.0', tag: 'v1.1.0', at: new Date().toISOString() }))
    await chown(file, OWNER.uid, OWNER.gid)
    try {
      const { code, report } = await check()
      expect(code).toBe(1)
      expect(report.checks.filter((c) => !c.ok).map((c) => [c.id, c.message])).toEqual([['health', `http://127.0.0.1:${f.port}/api/health answers HTTP 200 with version 1.0.0, not 1.1.0, the running version update-installed.json records`]])
    } finally {
      await rm(file)
    }
  }, 60_000)

  test('a toolchain that is not there, and a dirty checkout: both named, each with its fix', async () => {
    await f.define((d) => ((d.build as Record<string, unknown>).commands = [['nonexistent-tool', 'build']]))
    const local = path.join(f.appDir, 'local-notes.txt')
    await writeFile(local, 'an edit on the server\n')
    await chown(local, OWNER.uid, OWNER.gid)
    try {
      const { code, report } = await check()
      expect(code).toBe(1)
      const failed = Object.fromEntries(report.checks.filter((c) => !c.ok).map((c) => [c.id, c]))
      expect(Object.keys(failed)).toEqual(['clean', 'toolchain'])
      expect(failed.clean!.message).toBe('the checkout has local changes: local-notes.txt')
      expect(failed.clean!.fix).toContain(`sudo -u ${OWNER.name} git -C ${f.appDir} stash push --include-untracked`)
      expect(failed.toolchain!.message).toMatch(/^"nonexistent-tool" \(build command `nonexistent-tool build` from the definition\) is not on the PATH builds get: /)
    } finally {
      await f.define((d) => ((d.build as Record<string, unknown>).commands = [['node', 'build.mjs', '--out', '{out}']]))
      await rm(local)
    }
  }, 60_000)
})

describe('list, show and remove', () => {
  test('a broken definition is listed as broken, with its fix; show prints a definition as Upkeep reads it', async () => {
    const broken = path.join(f.env.UPKEEP_APPS_DIR!, 'broken.json')
    await writeFile(broken, JSON.stringify({ name: 'broken', checkout: '/srv/broken', run: {}, health: { url: 'nope' } }), { mode: 0o644 })
    const list = await f.upkeep(['app', 'list', '--json'])
    expect(list.code).toBe(0)
    const rows = JSON.parse(list.stdout) as { name: string; ok: boolean; checkout?: string; version?: string | null; error?: { code: string; message: string } }[]
    expect(rows.map((r) => [r.name, r.ok])).toEqual([
      ['upkeep', true],
      ['broken', false],
      ['fixture', true],
    ])
    expect(rows[1]!.error).toMatchObject({ code: 'BAD_CONFIG', message: expect.stringContaining('health.url: must be an http(s) URL') })
    expect(rows[2]).toMatchObject({ checkout: f.appDir })
    const text = await f.upkeep(['app', 'list'])
    expect(text.stdout).toMatch(/^broken\s+broken definition: .*broken\.json is not valid/m)
    expect(text.stdout).toMatch(/^NAME\s+CHECKOUT\s+UNITS\s+VERSION\s+LAST UPDATE$/m)

    const show = await f.upkeep(['app', 'show', 'fixture'])
    expect(show.code).toBe(0)
    expect(JSON.parse(show.stdout)).toMatchObject({ name: 'fixture', checkout: f.appDir, health: { version: { kind: 'json-pointer', pointer: '/version' }, expectStatus: 200 } })
    const missing = await f.upkeep(['app', 'show', 'nope'])
    expect(missing.code).toBe(1)
    expect(missing.stderr).toContain('upkeep: NOT_FOUND: no app definition at')

    // A broken definition can be removed all the same; the state is kept and said where.
    const removed = await f.upkeep(['app', 'remove', 'broken', '--yes'])
    expect(removed.code, removed.stderr).toBe(0)
    expect(removed.stdout).toContain(`✓ remove ${broken} (the definition)`)
    expect(removed.stdout).toContain('is kept in')
    expect((await f.upkeep(['app', 'remove', 'broken', '--yes'])).stderr).toContain('upkeep: NOT_FOUND: there is no app "broken"')
  }, 60_000)
})
