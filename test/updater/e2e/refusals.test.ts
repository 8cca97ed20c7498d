import { execFileSync, spawn } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm, writeFile, chown } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import type { HistoryEntry } from '../../../updater/shared/history'
import type { Journal } from '../../../updater/shared/journal'
import { writeUpdateRequest, newUpdateId } from '../../../updater/shared/request'
import { updateActivity } from '../../../updater/shared/update-activity'
import { createFixture, createOrigin, FIXTURE_APP, OWNER, type Fixture } from '../../support/fixture-app'
import { git } from '../../support/git-fixtures'
import { repoRoot } from '../../support/paths'

// Must show 4: bad input gets a clear error and changes nothing.
let root: string
let f: Fixture
beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'upkeep-refuse-'))
  f = await createFixture(await createOrigin(root))
})
afterAll(async () => {
  await f?.stop()
  await rm(root, { recursive: true, force: true })
})

async function snapshot() {
  return { health: await f.health(), current: await f.currentTarget(), head: f.head(), data: await f.dataDigest() }
}

async function refused(args: string[], env: NodeJS.ProcessEnv = {}): Promise<HistoryEntry | { error: { code: string; message: string; hint?: string } }> {
  const before = await snapshot()
  const r = await f.upkeep([...args, '--yes', '--json'], env)
  expect(r.code, r.stderr).toBe(1)
  expect(await snapshot()).toEqual(before)
  return JSON.parse(r.stdout)
}

function mountTmpfs(dir: string, size: string) {
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},uid=${OWNER.uid},gid=${OWNER.gid}`, 'tmpfs', dir])
}

describe('refusals change nothing', () => {
  test('a dirty worktree: DIRTY_WORKTREE with the command that fixes it', async () => {
    const file = path.join(f.appDir, 'CHANGES.txt')
    const original = await readFile(file, 'utf8')
    await writeFile(file, 'local edit\n')
    try {
      const e = (await refused(['update', 'v1.1.0'])) as HistoryEntry
      expect(e.error).toMatchObject({ code: 'DIRTY_WORKTREE', message: 'the checkout has local changes: CHANGES.txt' })
      expect(e.error?.hint).toContain(`sudo -u nobody git -C ${f.appDir} stash push --include-untracked`)
    } finally {
      await writeFile(file, original)
    }
  })

  test('an unknown tag: TAG_NOT_FOUND naming the newest tags', async () => {
    const e = (await refused(['update', 'v9.9.9'])) as HistoryEntry
    expect(e.error).toMatchObject({ code: 'TAG_NOT_FOUND', message: 'tag v9.9.9 is not on the remote' })
    expect(e.error?.hint).toContain('v1.4.0, v1.3.0')
  })

  test('a malformed version: a usage error (exit 2) before anything runs', async () => {
    const before = await snapshot()
    const r = await f.upkeep(['update', 'v1.1.0;rm -rf /', '--yes'])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('is not a version; versions look like 1.2.3 or v1.2.3')
    expect(r.stderr).not.toMatch(/\n\s+at /)
    expect(await snapshot()).toEqual(before)
  })

  test('a version that is not newer, without --force: NOT_NEWER with the --force hint', async () => {
    const e = (await refused(['update', 'v1.0.0'])) as HistoryEntry
    expect(e.error).toMatchObject({ code: 'NOT_NEWER', message: 'v1.0.0 is not newer than the running version 1.0.0' })
    expect(e.error?.hint).toContain('--force')
  })

  test('a checkout with root-owned files (after a `sudo git pull`): FOREIGN_OWNER with the chown command', async () => {
    const file = path.join(f.appDir, 'package.json')
    await chown(file, 0, 0)
    try {
      const e = (await refused(['update', 'v1.1.0'])) as HistoryEntry
      expect(e.error).toMatchObject({ code: 'FOREIGN_OWNER' })
      expect(e.error?.message).toContain('package.json')
      expect(e.error?.hint).toBe(`Give them back (a \`sudo git pull\` or \`sudo npm install\` leaves files like these): chown -R nobody: ${f.appDir}`)
    } finally {
      await chown(file, OWNER.uid, OWNER.gid)
    }
  })

  test('a full backup disk: DISK_FULL in preflight', async () => {
    await writeFile(path.join(f.dataDir, 'big.bin'), Buffer.alloc(3 << 20, 7))
    await mkdir(f.backupDir, { recursive: true })
    await chown(f.backupDir, OWNER.uid, OWNER.gid)
    mountTmpfs(f.backupDir, '1m')
    try {
      const e = (await refused(['update', 'v1.1.0'])) as HistoryEntry
      expect(e.error).toMatchObject({ code: 'DISK_FULL' })
      expect(e.error?.message).toMatch(/not enough space for the backup in .*backups: 1\.0 MiB free/)
    } finally {
      execFileSync('umount', [f.backupDir])
      await rm(path.join(f.dataDir, 'big.bin'))
    }
  })

  test('a disk that fills up during the build: DISK_FULL, staging cleaned, running version untouched', async () => {
    const staging = path.join(f.appDir, '.upkeep', 'staging')
    await mkdir(staging, { recursive: true })
    await chown(staging, OWNER.uid, OWNER.gid)
    mountTmpfs(staging, '80m')
    try {
      await f.define((d) => ((d.build as Record<string, unknown>).env = { FIXTURE_BUILD_FILL_MB: '200' }))
      const e = (await refused(['update', 'v1.1.0'])) as HistoryEntry
      expect(e.error).toMatchObject({ code: 'DISK_FULL', step: 'build' })
      expect(e.error?.message).toContain('no space left on device')
      expect(execFileSync('ls', ['-A', staging], { encoding: 'utf8' })).toBe('')
    } finally {
      await f.define((d) => delete (d.build as Record<string, unknown>).env)
      execFileSync('umount', [staging])
    }
  })

  test('a malformed update request is rejected and deleted, never used', async () => {
    const paths = f.paths
    const before = await snapshot()
    await mkdir(path.dirname(paths.request), { recursive: true })
    await writeFile(paths.request, JSON.stringify({ updateId: newUpdateId(), version: 'v1.1.0 --upload-pack=touch /tmp/x', backup: true, requestedAt: new Date().toISOString() }))
    const r = await f.upkeep(['apply-request'])
    expect(r.code).toBe(1)
    expect(r.stdout).toContain('rejected update request')
    expect(r.stdout).toContain('version must be a release tag')
    await expect(readFile(paths.request)).rejects.toThrow()
    expect(await snapshot()).toEqual(before)
  })
})

describe('two updates at once, then the request path', () => {
  test('one runs, the other gets LOCKED (and the server would answer 409); then a lower tag needs --force', async () => {
    const paths = f.paths
    await f.define((d) => ((d.build as Record<string, unknown>).env = { FIXTURE_BUILD_DELAY_MS: '3000' }))
    const first = spawn(process.execPath, [path.join(repoRoot, 'updater/bin.mjs'), '--app', FIXTURE_APP, 'update', 'v1.1.0', '--yes', '--json'], {
      cwd: f.root,
      env: f.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    first.stdout.on('data', (d) => (out += d))
    const firstDone = new Promise<number | null>((r) => first.once('exit', r))
    const deadline = Date.now() + 30_000
    const isBuilding = async () => {
      // As a plain file: root trusts only journals root wrote, and this one is the app user's.
      const j = (await readFile(paths.journal, 'utf8').then((t) => JSON.parse(t) as Journal).catch(() => undefined))
      return j?.state === 'running' && j.steps.at(-1)?.name === 'build'
    }
    while (Date.now() < deadline && !(await isBuilding())) await new Promise((r) => setTimeout(r, 50))
    expect((await updateActivity(paths)).state).toBe('running')

    const second = await f.upkeep(['update', 'v1.1.0', '--yes', '--json'])
    expect(second.code).toBe(1)
    expect(JSON.parse(second.stdout).error).toMatchObject({ code: 'LOCKED', hint: 'Wait for it to finish; `upkeep history` shows the result.' })

    expect(await firstDone).toBe(0)
    await f.define((d) => delete (d.build as Record<string, unknown>).env)
    expect(JSON.parse(out)).toMatchObject({ status: 'complete', to: { tag: 'v1.1.0' } })
    expect(await f.health()).toEqual({ status: 200, version: '1.1.0' })

    const lower = (await refused(['update', 'v1.0.0'])) as HistoryEntry
    expect(lower.error).toMatchObject({ code: 'NOT_NEWER', message: 'v1.0.0 is not newer than the running version 1.1.0' })
  })

  test('apply-request takes a valid request, deletes it, and runs that update under its id (a downgrade needs the CLI)', async () => {
    const paths = f.paths
    const updateId = newUpdateId()
    await mkdir(path.dirname(paths.request), { recursive: true })
    expect(await writeUpdateRequest(paths.request, { updateId, version: 'v1.0.0', backup: true, requestedAt: new Date().toISOString() })).toBe(true)
    const r = await f.upkeep(['apply-request'])
    expect(r.code).toBe(1)
    await expect(readFile(paths.request)).rejects.toThrow()
    const history = JSON.parse((await f.upkeep(['history', '--json', '-n', '1'])).stdout) as HistoryEntry[]
    expect(history[0]).toMatchObject({ id: updateId, trigger: 'request', status: 'failed', error: { code: 'NOT_NEWER' } })
    // The status stream names the same update, for the UI that asked for it.
    const status = (await readFile(paths.status, 'utf8')).trim().split('\n').map((l) => JSON.parse(l))
    expect(status[0]).toMatchObject({ type: 'update-started', updateId })
    expect(status.at(-1)).toMatchObject({ type: 'finished', status: 'failed', updateId })
    expect(git(f.appDir, ['status', '--porcelain', '--untracked-files=no'])).toBe('')
  })
})
