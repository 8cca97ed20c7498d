import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, expect, test } from 'vitest'
import { createRunningUpdate } from '../../server/services/running-update'
import { writeJsonAtomic } from '../../updater/shared/atomic-write'
import type { AppPaths } from '../../updater/shared/paths'
import { appPathsIn } from '../support/app-paths'
import { writeUpdateRequest } from '../../updater/shared/request'

let dir: string
let paths: AppPaths
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'upkeep-running-'))
  paths = appPathsIn(dir)
  await mkdir(paths.stateDir)
})
afterEach(() => rm(dir, { recursive: true, force: true }))

const journal = (state: 'running' | 'done') => ({
  schema: 1,
  updateId: '20261123T182800Z-a1b2c3d4',
  kind: 'update',
  trigger: 'request',
  pid: 999_999_999,
  startedAt: '2026-11-23T18:28:00.000Z',
  updatedAt: new Date().toISOString(),
  from: { version: '1.0.0' },
  to: { version: '1.1.0', tag: 'v1.1.0' },
  options: { backup: true, force: false },
  state,
  steps: [{ name: 'build', phase: 'started', startedAt: '2026-11-23T18:28:01.000Z' }],
  recoveries: 0,
})

test('nothing going on: null, also after a finished update', async () => {
  const running = createRunningUpdate(paths)
  expect(await running()).toBeNull()
  await writeJsonAtomic(paths.journal, journal('done'))
  expect(await running()).toBeNull()
})

test('a request the updater has not taken yet names its update id and version', async () => {
  await writeUpdateRequest(paths.request, { updateId: '20261123T190000Z-0badcafe', version: 'v1.2.0', backup: true, requestedAt: '2026-11-23T19:00:00.000Z' })
  expect(await createRunningUpdate(paths)()).toEqual({ state: 'requested', updateId: '20261123T190000Z-0badcafe', from: null, to: '1.2.0', startedAt: '2026-11-23T19:00:00.000Z' })
})

test('an unfinished journal whose updater is gone is interrupted', async () => {
  await writeJsonAtomic(paths.journal, journal('running'))
  expect(await createRunningUpdate(paths)()).toEqual({ state: 'interrupted', updateId: '20261123T182800Z-a1b2c3d4', from: '1.0.0', to: '1.1.0', startedAt: '2026-11-23T18:28:00.000Z' })
})
