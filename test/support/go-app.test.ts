// The Go test app, built and run as the unprivileged owner with a clean environment, as an
// updater would. Slow on a cold Go cache (the standard library is compiled once per HOME).
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { OWNER } from './fixture-app'
import { git } from './git-fixtures'
import { createGoAppOrigin, ensureGo, GO_APP, GO_APP_TAGS, goAppUnit, type GoAppOrigin } from './go-app'
import { freePort } from './run'
import { cleanEnv, ownerHome, runAsOwner, runAsOwnerOk, startAsOwner, waitForHealthy } from './unprivileged'

let root: string
let origin: GoAppOrigin
let home: string

beforeAll(async () => {
  ensureGo()
  root = await mkdtemp(path.join(tmpdir(), 'upkeep-go-app-'))
  origin = await createGoAppOrigin(root)
  home = await ownerHome(root)
})
afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true })
})

/** A checkout of `tag` owned by OWNER, as the updater keeps one. */
async function checkout(tag: string): Promise<string> {
  const dir = path.join(root, `checkout-${tag}`)
  git(root, ['clone', '-q', '--branch', tag, origin.bare, dir])
  execFileSync('chown', ['-R', `${OWNER.uid}:${OWNER.gid}`, dir])
  return dir
}

const buildEnv = () => cleanEnv(home, GO_APP.buildEnv)

async function dataDir(name: string): Promise<string> {
  const dir = await ownerHome(root, `data-${name}`)
  return dir
}

describe('the Go app', () => {
  test('has one annotated tag per release, each on its own commit', () => {
    expect(git(root, ['--git-dir', origin.bare, 'tag', '-l']).split('\n')).toEqual([...GO_APP_TAGS])
    for (const tag of GO_APP_TAGS) {
      expect(git(root, ['--git-dir', origin.bare, 'cat-file', '-t', tag])).toBe('tag')
      expect(git(root, ['--git-dir', origin.bare, 'rev-parse', `${tag}^{commit}`])).toBe(origin.commits[tag])
    }
    expect(new Set(Object.values(origin.commits)).size).toBe(GO_APP_TAGS.length)
  })

  test('v1.1.0 builds as the owner with a clean environment, serves, reports 1.1.0 at /build/version and stops on SIGTERM', async () => {
    const dir = await checkout('v1.1.0')
    const build = await runAsOwnerOk(GO_APP.buildCommands[0], { cwd: dir, env: buildEnv(), timeoutMs: 300_000 })
    expect(build.stdout).toContain('built notes-server 1.1.0')
    expect(existsSync(path.join(dir, GO_APP.binary))).toBe(true)
    // The build leaves the checkout clean (bin/ is ignored), so an updater's dirty-tree check passes.
    expect(git(dir, ['status', '--porcelain'])).toBe('')

    const port = await freePort()
    const data = await dataDir('v1.1.0')
    const server = startAsOwner([path.join(dir, GO_APP.binary)], { cwd: dir, env: cleanEnv(home, GO_APP.env(port, data)) })
    try {
      const { body } = await waitForHealthy(`http://127.0.0.1:${port}${GO_APP.healthPath}`, server, 30_000)
      const health = JSON.parse(body) as { status: string; version?: string; build: { version: string } }
      expect(health.status).toBe('ok')
      expect(health.version).toBeUndefined()
      expect(health.build.version).toBe('1.1.0')

      const created = await fetch(`http://127.0.0.1:${port}/notes`, { method: 'POST', body: 'buy milk' })
      expect(created.status).toBe(201)
      expect(await readFile(path.join(data, 'notes', '0001.txt'), 'utf8')).toBe('buy milk')
      expect(await readFile(path.join(data, 'schema-version'), 'utf8')).toBe('1\n')
    } finally {
      const end = await server.stop()
      expect(end.code).toBe(0)
    }
  }, 300_000)

  test('v1.2.0 builds, writes its migration into DATA_DIR and exits 1 at start', async () => {
    const dir = await checkout('v1.2.0')
    await runAsOwnerOk(GO_APP.buildCommands[0], { cwd: dir, env: buildEnv(), timeoutMs: 300_000 })
    const data = await dataDir('v1.2.0')
    const server = startAsOwner([path.join(dir, GO_APP.binary)], { cwd: dir, env: cleanEnv(home, GO_APP.env(await freePort(), data)) })
    const end = await server.exited
    expect(end.code).toBe(1)
    expect(server.output()).toContain('cannot start')
    expect(await readFile(path.join(data, 'schema-version'), 'utf8')).toBe('2\n')
    expect(await readFile(path.join(data, 'migrations.log'), 'utf8')).toBe('migrated to schema 2 by 1.2.0\n')
  }, 300_000)

  test('v1.3.0 does not build: a compile error, and no binary', async () => {
    const dir = await checkout('v1.3.0')
    const r = await runAsOwner(GO_APP.buildCommands[0], { cwd: dir, env: buildEnv(), timeoutMs: 300_000 })
    expect(r.code).not.toBe(0)
    expect(r.stderr).toContain('undefined: noteCount')
    expect(existsSync(path.join(dir, GO_APP.binary))).toBe(false)
  }, 300_000)

  test('unit files for both layouts run the built program with its port and data', () => {
    const opts = { user: 'notes', checkout: '/opt/notes', port: 8090, dataDir: '/var/lib/notes' }
    const inPlace = goAppUnit({ ...opts, layout: 'in-place' })
    expect(inPlace).toContain('\nWorkingDirectory=/opt/notes\n')
    expect(inPlace).toContain('\nExecStart=/opt/notes/bin/notes-server\n')
    const current = goAppUnit({ ...opts, layout: 'current' })
    expect(current).toContain('\nWorkingDirectory=/opt/notes/current\n')
    expect(current).toContain('\nExecStart=/opt/notes/current/bin/notes-server\n')
    for (const unit of [inPlace, current]) {
      expect(unit).toContain('\nUser=notes\n')
      expect(unit).toContain('\nEnvironment=PORT=8090\n')
      expect(unit).toContain('\nEnvironment=DATA_DIR=/var/lib/notes\n')
    }
  })
})
