import { spawn } from 'node:child_process'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import { createUpdateLock } from '../../../updater/adapters/lock'
import { silentLogger } from '../../../updater/shared/log'
import { appPathsIn } from '../../support/app-paths'
import { isProcessAlive, processStartTime } from '../../../updater/shared/pidfile'
import { isLockHeld, lockOwnerFile } from '../../../updater/shared/update-activity'

let dir: string
let paths: ReturnType<typeof appPathsIn>
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'upkeep-lock-'))
  paths = appPathsIn(dir)
  await mkdir(paths.stateDir)
})
afterEach(() => rm(dir, { recursive: true, force: true }))

const lock = () => createUpdateLock(paths, { log: silentLogger(), staleAfterMs: 30 * 60_000 })

describe('the update lock', () => {
  test('a second updater gets LOCKED while the first holds it; released, it is free', async () => {
    const held = await lock().acquire()
    expect(await isLockHeld(paths)).toBe(true)
    await expect(lock().acquire()).rejects.toMatchObject({ code: 'LOCKED' })
    await held.release()
    expect(await isLockHeld(paths)).toBe(false)
    await (await lock().acquire()).release()
  })

  test('the lock of a killed updater is taken over at once', async () => {
    await mkdir(paths.lock)
    await writeFile(lockOwnerFile(paths), JSON.stringify({ pid: 2 ** 22 + 7, since: new Date().toISOString() }))
    expect(await isLockHeld(paths)).toBe(false)
    const held = await lock().acquire()
    expect(held.tookOverStale).toBe(false)
    await held.release()
  })

  test('an updater with no journal progress for 30 minutes is stopped and its lock released', async () => {
    const hung = spawn('sleep', ['60'], { stdio: 'ignore', detached: true })
    await new Promise((r) => hung.once('spawn', r))
    await mkdir(paths.lock)
    await writeFile(lockOwnerFile(paths), JSON.stringify({ pid: hung.pid, start: processStartTime(hung.pid!) }))
    const old = new Date(Date.now() - 31 * 60_000).toISOString()
    await writeFile(paths.journal, JSON.stringify({ schema: 1, updateId: '20261123T100000Z-00000001', kind: 'update', trigger: 'cli', pid: hung.pid, startedAt: old, updatedAt: old, from: { version: '1.0.0' }, to: { version: '1.1.0', tag: 'v1.1.0' }, options: { backup: true, force: false }, state: 'running', steps: [{ name: 'build', phase: 'started', startedAt: old }], recoveries: 0 }))
    const exited = new Promise((r) => hung.once('exit', r))
    const held = await lock().acquire()
    expect(held.tookOverStale).toBe(true)
    await exited
    expect(isProcessAlive(hung.pid!)).toBe(false)
    await held.release()
  })
})
