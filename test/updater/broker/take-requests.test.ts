import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import { takeRequests } from '../../../updater/broker/take-requests'
import { createRegistry } from '../../../updater/shared/apps/registry'
import { parseConfig, type Config } from '../../../updater/shared/config'
import { writeUpdateRequest, type UpdateRequest } from '../../../updater/shared/request'

// What the updater takes from the server's data dir: valid requests of known apps; a request of
// an app whose worker is starting (skip) or running (lock) stays for the next round.

const request = (id: string, version: string): UpdateRequest => ({ updateId: `20261202T230000Z-0000000${id}`, version, backup: true, requestedAt: '2026-12-02T23:00:00.000Z' })

describe('takeRequests', () => {
  let root: string
  let config: Config
  beforeEach(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'upkeep-take-requests-'))
    await mkdir(path.join(root, 'apps'))
    await mkdir(path.join(root, 'data', 'requests'), { recursive: true })
    for (const name of ['notes', 'tiles']) {
      await writeFile(path.join(root, 'apps', `${name}.json`), JSON.stringify({ name, checkout: path.join(root, name), run: { units: [`${name}.service`] }, health: { url: 'http://127.0.0.1:9/health' } }))
    }
    config = parseConfig({ DATA_DIR: path.join(root, 'data'), UPKEEP_APPS_DIR: path.join(root, 'apps'), UPKEEP_STATE_DIR: path.join(root, 'state') }, { appDir: path.join(root, 'upkeep'), cwd: '/' })
  })
  afterEach(() => rm(root, { recursive: true, force: true }))

  test("Upkeep's own request, another app's, and one of an app being started, which stays", async () => {
    await writeUpdateRequest(path.join(root, 'data', 'update-request.json'), request('1', 'v1.1.0'))
    await writeUpdateRequest(path.join(root, 'data', 'requests', 'notes.json'), request('2', 'v2.0.0'))
    await writeUpdateRequest(path.join(root, 'data', 'requests', 'tiles.json'), request('3', 'v5.5.0'))
    const taken = await takeRequests(config, createRegistry(config, { requireRootOwned: false }), new Set(['tiles']))
    expect(taken).toEqual([
      { app: 'upkeep', ok: true, request: request('1', 'v1.1.0') },
      { app: 'notes', ok: true, request: request('2', 'v2.0.0') },
    ])
    expect(await readdir(path.join(root, 'data', 'requests'))).toEqual(['tiles.json'])
    // Once its worker has ended, the next round takes it.
    expect(await takeRequests(config, createRegistry(config, { requireRootOwned: false }))).toEqual([{ app: 'tiles', ok: true, request: request('3', 'v5.5.0') }])
  })

  test('a request file of no app is taken and refused, never passed on', async () => {
    await writeUpdateRequest(path.join(root, 'data', 'requests', 'Bad_Name.json'), request('4', 'v1.0.0'))
    await writeUpdateRequest(path.join(root, 'data', 'requests', 'ghost.json'), request('5', 'v1.0.0'))
    const taken = await takeRequests(config, createRegistry(config, { requireRootOwned: false }))
    expect(taken.map((t) => [t.app, t.ok])).toEqual([
      ['Bad_Name', false],
      ['ghost', false],
    ])
    expect(await readdir(path.join(root, 'data', 'requests'))).toEqual([])
  })
})
