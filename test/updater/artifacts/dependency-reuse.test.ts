import { execFileSync } from 'node:child_process'
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { findCachedDependencies, lockfileKey, pruneDependencyCache, reuseDependencies, saveDependencies } from '../../../updater/artifacts/dependency-reuse'
import { createRunTool } from '../../../updater/artifacts/run-tool'

// Real trees and the real cp/find; a tree stands for a checkout with node_modules installed.

const run = createRunTool()
const spec = { lockfiles: ['package-lock.json', 'npm-shrinkwrap.json'], dirs: ['node_modules'] }
let dir: string
let n = 0

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'upkeep-deps-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

/** A checkout with `lock` as package-lock.json and, when `installed`, a node_modules as npm leaves it. */
async function tree(lock: string | undefined, installed = true): Promise<string> {
  const t = path.join(dir, `tree-${++n}`)
  await mkdir(t)
  await writeFile(path.join(t, 'package.json'), '{"name":"widget"}\n')
  if (lock !== undefined) await writeFile(path.join(t, 'package-lock.json'), lock)
  if (installed) {
    await mkdir(path.join(t, 'node_modules/left-pad/lib'), { recursive: true })
    await mkdir(path.join(t, 'node_modules/.bin'))
    await writeFile(path.join(t, 'node_modules/left-pad/index.js'), 'module.exports = 1\n')
    await writeFile(path.join(t, 'node_modules/left-pad/lib/cli.js'), '#!/usr/bin/env node\n', { mode: 0o755 })
    await symlink('../left-pad/lib/cli.js', path.join(t, 'node_modules/.bin/left-pad'))
  }
  return t
}

const LOCK = '{"lockfileVersion":3,"packages":{"node_modules/left-pad":{"version":"1.3.0"}}}\n'

describe('reuseDependencies', () => {
  test('an identical lockfile: node_modules is reused as read-only hardlinks (or reflinks), links kept', async () => {
    const previous = await tree(LOCK)
    const staging = await tree(LOCK, false)
    const result = await reuseDependencies(run, { ...spec, previousTree: previous, stagingTree: staging })
    expect(result).toMatchObject({ reused: true, method: expect.stringMatching(/^(reflink|hardlink)$/) })
    const a = await stat(path.join(previous, 'node_modules/left-pad/index.js'))
    const b = await stat(path.join(staging, 'node_modules/left-pad/index.js'))
    if (result.reused && result.method === 'hardlink') {
      expect(b.ino).toBe(a.ino)
      expect(b.mode & 0o222).toBe(0)
      expect((await stat(path.join(staging, 'node_modules/left-pad/lib/cli.js'))).mode & 0o777).toBe(0o555)
    } else {
      expect(b.ino).not.toBe(a.ino)
    }
    // Directories are never shared.
    expect((await stat(path.join(staging, 'node_modules/left-pad'))).ino).not.toBe((await stat(path.join(previous, 'node_modules/left-pad'))).ino)
    expect(await readlink(path.join(staging, 'node_modules/.bin/left-pad'))).toBe('../left-pad/lib/cli.js')
    expect(await readFile(path.join(staging, 'node_modules/.bin/left-pad'), 'utf8')).toBe('#!/usr/bin/env node\n')
  })

  test('the hardlink fallback: the app\'s user cannot write a shared file in place, but may replace it', async () => {
    const previous = await tree(LOCK)
    const staging = await tree(LOCK, false)
    expect(await reuseDependencies(run, { ...spec, previousTree: previous, stagingTree: staging, methods: ['hardlink'] })).toEqual({ reused: true, method: 'hardlink' })
    // As an unprivileged owner (root ignores file modes): 65534 is nobody on Debian.
    execFileSync('chown', ['-R', '65534:65534', previous, staging])
    const asNobody = (script: string) =>
      execFileSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'sh', '-c', script], { cwd: staging, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' })
    expect(() => asNobody('echo tampered >> node_modules/left-pad/index.js')).toThrow(/Permission denied/)
    asNobody('echo new > node_modules/left-pad/index.js.tmp && mv -f node_modules/left-pad/index.js.tmp node_modules/left-pad/index.js && mkdir node_modules/.vite')
    expect(await readFile(path.join(staging, 'node_modules/left-pad/index.js'), 'utf8')).toBe('new\n')
    expect(await readFile(path.join(previous, 'node_modules/left-pad/index.js'), 'utf8')).toBe('module.exports = 1\n')
  })

  test.each([
    ['a changed lockfile', LOCK.replace('1.3.0', '1.3.1'), 'package-lock.json changed'],
    ['a lockfile only one side has', undefined, 'package-lock.json changed'],
  ])('%s installs fresh', async (_n, stagingLock, reason) => {
    const previous = await tree(LOCK)
    const staging = await tree(stagingLock, false)
    expect(await reuseDependencies(run, { ...spec, previousTree: previous, stagingTree: staging })).toEqual({ reused: false, reason })
    expect(await lstat(path.join(staging, 'node_modules')).catch(() => undefined)).toBeUndefined()
  })

  test('no lockfile anywhere, nothing installed before, or node_modules already in staging: no reuse', async () => {
    expect(await reuseDependencies(run, { ...spec, previousTree: await tree(undefined), stagingTree: await tree(undefined, false) })).toEqual({ reused: false, reason: 'no lockfile (package-lock.json, npm-shrinkwrap.json)' })
    expect(await reuseDependencies(run, { ...spec, previousTree: await tree(LOCK, false), stagingTree: await tree(LOCK, false) })).toEqual({ reused: false, reason: 'the previous build has no node_modules' })
    expect(await reuseDependencies(run, { ...spec, previousTree: await tree(LOCK), stagingTree: await tree(LOCK) })).toEqual({ reused: false, reason: 'staging already has node_modules' })
  })

  // Reflinks need btrfs or XFS; on ext4 or tmpfs cp refuses them, which makes reflink alone a method that fails.
  const tmpFs = execFileSync('stat', ['-f', '-c', '%T', tmpdir()], { encoding: 'utf8' }).trim()
  test.skipIf(['btrfs', 'xfs'].includes(tmpFs))('when no copy method works, staging is left without a partial node_modules', async () => {
    const previous = await tree(LOCK)
    const staging = await tree(LOCK, false)
    const result = await reuseDependencies(run, { ...spec, previousTree: previous, stagingTree: staging, methods: ['reflink'] })
    expect(result).toMatchObject({ reused: false, reason: expect.stringMatching(/^cannot copy .* reflink: /) })
    expect(await readdir(staging)).not.toContain('node_modules')
  })
})

describe('the dependency cache', () => {
  test('save after a fresh install, find by lockfile, reuse into the next staging tree', async () => {
    const cacheDir = path.join(dir, `cache-${++n}`)
    const built = await tree(LOCK)
    const entry = await saveDependencies(run, { ...spec, stagingTree: built, cacheDir, keep: 3, now: new Date('2026-11-23T10:00:00Z') })
    expect(entry).toBe(path.join(cacheDir, (await lockfileKey(built, spec.lockfiles))!))
    expect((await readdir(entry!)).sort()).toEqual(['node_modules', 'package-lock.json'])

    const next = await tree(LOCK, false)
    expect(await findCachedDependencies(cacheDir, next, spec)).toBe(entry)
    expect(await reuseDependencies(run, { ...spec, previousTree: entry!, stagingTree: next })).toMatchObject({ reused: true })
    expect(await findCachedDependencies(cacheDir, await tree(LOCK.replace('1.3.0', '2.0.0'), false), spec)).toBeUndefined()
  })

  test('the key covers the environment: another Node ABI does not find the entry', async () => {
    const t = await tree(LOCK)
    expect(await lockfileKey(t, spec.lockfiles, 'linux-x64-node-abi115')).not.toBe(await lockfileKey(t, spec.lockfiles, 'linux-x64-node-abi127'))
    expect(await lockfileKey(await tree(undefined), spec.lockfiles)).toBeUndefined()
  })

  test('prunes to the most recently used entries and removes interrupted saves', async () => {
    const cacheDir = path.join(dir, `cache-${++n}`)
    const keys: string[] = []
    for (let i = 0; i < 4; i++) {
      const t = await tree(LOCK.replace('1.3.0', `1.3.${i}`))
      await saveDependencies(run, { ...spec, stagingTree: t, cacheDir, keep: 10, now: new Date(Date.UTC(2026, 10, 20 + i)) })
      keys.push((await lockfileKey(t, spec.lockfiles))!)
    }
    // Entry 0 is used again, most recently of all.
    const again = await tree(LOCK.replace('1.3.0', '1.3.0'))
    await saveDependencies(run, { ...spec, stagingTree: again, cacheDir, keep: 10, now: new Date(Date.UTC(2026, 10, 30)) })
    await mkdir(path.join(cacheDir, `.${'f'.repeat(64)}.tmp-1`))
    const removed = await pruneDependencyCache(cacheDir, 2)
    expect(removed.sort()).toEqual([`.${'f'.repeat(64)}.tmp-1`, keys[1], keys[2]].sort())
    expect((await readdir(cacheDir)).sort()).toEqual([keys[0], keys[3]].sort())
  })
})
