import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import type { AppSummary } from '../../server/services/apps'
import type { HistoryEntry } from '../../updater/shared/history'
import { startClientLoop, type ClientLoop } from '../support/client-loop'
import { defineApps, hostGoApp, hostSeeds, hostTileServer, type HostedApp } from '../support/apps-sandbox'
import { GO_APP } from '../support/go-app'
import { INSTALL_DIR, startUpkeepSandbox, type UpkeepSandbox } from '../support/installed-upkeep'
import { freePort } from '../support/run'
import type { Sandbox } from '../support/sandbox'
import { NODE_APP } from '../support/third-party-apps'
import { upkeepApi, type UpkeepApi } from '../support/upkeep-api'

// Issue 11, must show 1, 2 and 5, on one host (a systemd sandbox): Upkeep itself, installed by
// install.sh; TileServer GL light, a real third-party Node server from the npm registry (its
// published versions as tags of a local origin, nothing added to them) running in place from its
// checkout, with SQLite data and a health endpoint that reports no version; a Go app built with
// Debian's Go (written here: no Go server app has several versions in Debian or on npm); and the
// seeds' shape, a Go backend and a Node frontend in two units. Every app has its own user, unit,
// port, data, definition and state. They are updated through Upkeep's HTTP API.
//
// TileServer has no published version that fails on this host, so its broken release is 5.6.0's
// published files with one of them left out (src/serve_font.js), as a publishing mistake would
// leave them: nothing is added or changed.

const ADMIN_PASSWORD = 'correct horse battery staple'

describe('Upkeep and three apps nobody here wrote, on one host', () => {
  let box: UpkeepSandbox
  let sb: Sandbox
  let api: UpkeepApi
  const ports = { tile: 0, go: 0, seedsBackend: 0, seedsFrontend: 0 }
  let tile: HostedApp
  let go: HostedApp
  let seeds: HostedApp
  let loop: ClientLoop | undefined

  const mainPid = (unit: string) => box.mainPid(unit)
  const mainPids = async () => Object.fromEntries(await Promise.all([...tile.units, ...go.units, ...seeds.units, 'upkeep.service'].map(async (u) => [u, await mainPid(u)] as const)))
  const get = async <T>(p: string) => api.get<T>(p)
  const apply = async (app: string, version: string): Promise<string> => {
    const res = await api.post<{ updateId?: string }>(`/api/apps/${app}/updates/apply`, { version })
    if (res.status !== 202 || !res.body.updateId) throw new Error(`apply ${app} ${version}: ${res.status} ${JSON.stringify(res.body)}`)
    return res.body.updateId
  }
  const waitFor = async (app: string, id: string, timeoutMs = 600_000): Promise<HistoryEntry> => {
    const deadline = Date.now() + timeoutMs
    while (Date.now() < deadline) {
      const { entries } = await get<{ entries: HistoryEntry[] }>(`/api/apps/${app}/updates/history`).catch(() => ({ entries: [] as HistoryEntry[] }))
      const found = entries.find((e) => e.id === id)
      if (found) return found
      await new Promise((r) => setTimeout(r, 500))
    }
    const log = await sb.exec('journalctl', ['-u', 'upkeep-updater.service', '-o', 'cat', '-n', '40', '--no-pager'])
    throw new Error(`${app} update ${id} did not end within ${timeoutMs} ms:\n${log.stdout}`)
  }
  const update = async (app: string, version: string) => waitFor(app, await apply(app, version))
  /** Every file of a data dir with its sha256, as the app's user sees it. */
  const dataDigest = (dir: string) => sb.sh(`cd ${dir} && find . -type f | sort | xargs -r sha256sum`)
  const sha = (file: string) => sb.execOk('sha256sum', [file]).then((o) => o.split(' ')[0]!)
  const httpGet = async (port: number, p: string) => {
    const res = await fetch(`http://127.0.0.1:${port}${p}`, { signal: AbortSignal.timeout(5000) })
    return { status: res.status, body: await res.text() }
  }

  beforeAll(async () => {
    box = await startUpkeepSandbox({ label: 'apps' })
    sb = box.sb
    for (const k of Object.keys(ports) as (keyof typeof ports)[]) ports[k] = await freePort()
    await sb.writeFile('/etc/upkeep/upkeep.env', 'GITHUB_API_URL=http://127.0.0.1:9\n', '600')
    const installed = await box.installRelease('v1.0.0', [], { UPKEEP_ADMIN_PASSWORD: ADMIN_PASSWORD })
    if (installed.code !== 0) throw new Error(`install.sh failed:\n${installed.stdout}\n${installed.stderr}`)
    tile = await hostTileServer(box, ports.tile)
    go = await hostGoApp(box, ports.go)
    seeds = await hostSeeds(box, ports.seedsBackend, ports.seedsFrontend)
    await defineApps(box, [tile, go, seeds])
    await sb.execOk('systemctl', ['start', 'tileserver.service', 'notes.service'])
    api = await upkeepApi(`http://127.0.0.1:${box.port}`, ADMIN_PASSWORD)
    // The seeds app's first deploy goes through Upkeep: a forced update to its first release
    // builds it into .upkeep/releases/v1.0.0 and starts both units (they run from `current`).
    const first = await sb.exec('node', [`${INSTALL_DIR}/current/upkeep.mjs`, '--app', 'seeds', 'update', 'v1.0.0', '--force', '--yes', '--json'], { timeoutMs: 600_000, env: { UPKEEP_SERVICE_MANAGER: 'systemd' } })
    if (first.code !== 0) throw new Error(`seeds first deploy failed:\n${first.stdout}\n${first.stderr}`)
    loop = startClientLoop(box.port, { workers: 10 })
  }, 1_200_000)

  afterAll(async () => {
    await loop?.stop()
    await box?.close()
  })

  test('the apps list shows each app with its running version, and each app serves', async () => {
    const { apps } = await get<{ apps: AppSummary[] }>('/api/apps')
    expect(apps.map((a) => a.name)).toEqual(['upkeep', 'notes', 'seeds', 'tileserver'])
    expect(Object.fromEntries(apps.map((a) => [a.name, a.error ?? a.status?.current.version]))).toEqual({ upkeep: '1.0.0', notes: 'unknown', seeds: '1.0.0', tileserver: 'unknown' })
    expect(await httpGet(ports.tile, '/health')).toEqual({ status: 200, body: 'OK' })
    expect(JSON.parse((await httpGet(ports.go, '/healthz')).body)).toMatchObject({ build: { version: '1.0.0' } })
    expect(JSON.parse((await httpGet(ports.seedsBackend, '/api/health')).body)).toMatchObject({ version: '1.0.0' })
    expect((await httpGet(ports.seedsFrontend, '/')).status).toBe(200)
  })

  test('TileServer 5.1.3 → 5.5.0 through the API: in place, as its user, data intact, the other apps untouched', async () => {
    const before = await mainPids()
    const data = await sha(`${tile.dataDir}/tiles.mbtiles`)
    const entry = await update(tile.name, NODE_APP.versions.next)
    expect(entry, JSON.stringify(entry.error)).toMatchObject({ status: 'complete', app: tile.name, to: { tag: `v${NODE_APP.versions.next}` } })
    expect(await httpGet(ports.tile, '/health')).toEqual({ status: 200, body: 'OK' })
    const pkg = JSON.parse(await sb.execOk('cat', [`${tile.checkout}/package.json`])) as { version: string }
    expect(pkg.version).toBe(NODE_APP.versions.next)
    expect(await sha(`${tile.dataDir}/tiles.mbtiles`)).toBe(data)
    const after = await mainPids()
    expect(after['tileserver.service']).not.toBe(before['tileserver.service'])
    for (const u of ['notes.service', ...seeds.units, 'upkeep.service']) expect(after[u], u).toBe(before[u])
    // The update ran as the app's user: what it built and backed up is theirs, not root's.
    expect((await sb.execOk('stat', ['-c', '%U', `${tile.checkout}/node_modules`, entry.backupPath!])).trim().split('\n')).toEqual([tile.user, tile.user])
    // Its backup holds its data and nothing of Upkeep's.
    const listing = await sb.execOk('tar', ['tzf', entry.backupPath!])
    expect(listing).toContain('var/lib/tileserver/data/tiles.mbtiles')
    expect(listing).not.toMatch(/admin-password|sessions\.json|settings\.json|update-/)
    const { apps } = await get<{ apps: AppSummary[] }>('/api/apps')
    expect(apps.find((a) => a.name === tile.name)?.status?.current.version).toBe(NODE_APP.versions.next)
  }, 900_000)

  test('TileServer v5.6.1, which cannot start, is rolled back by itself: 5.5.0 serves, data intact', async () => {
    const data = await sha(`${tile.dataDir}/tiles.mbtiles`)
    const entry = await update(tile.name, '5.6.1')
    expect(entry).toMatchObject({ status: 'rolled_back', error: { code: 'HEALTH_CHECK_FAILED' } })
    expect(await httpGet(ports.tile, '/health')).toEqual({ status: 200, body: 'OK' })
    expect((JSON.parse(await sb.execOk('cat', [`${tile.checkout}/package.json`])) as { version: string }).version).toBe(NODE_APP.versions.next)
    expect((await sb.execOk('test', ['-e', `${tile.checkout}/src/serve_font.js`]).then(() => 'there'))).toBe('there')
    expect(await sha(`${tile.dataDir}/tiles.mbtiles`)).toBe(data)
  }, 900_000)

  test('two apps at once: both run side by side, each under its own lock; a second request for a running app is refused (409)', async () => {
    const before = await mainPids()
    const [goId, tileId] = [await apply(go.name, '1.1.0'), await apply(tile.name, NODE_APP.versions.later)]
    expect((await api.post(`/api/apps/${tile.name}/updates/apply`, { version: NODE_APP.versions.later })).status).toBe(409)
    const [g, t] = await Promise.all([waitFor(go.name, goId), waitFor(tile.name, tileId)])
    expect(g, JSON.stringify(g.error)).toMatchObject({ status: 'complete', to: { version: '1.1.0' } })
    expect(t, JSON.stringify(t.error)).toMatchObject({ status: 'complete', to: { version: NODE_APP.versions.later } })
    // They overlapped in time: neither waited for the other.
    expect(Date.parse(g.startedAt)).toBeLessThan(Date.parse(t.finishedAt))
    expect(Date.parse(t.startedAt)).toBeLessThan(Date.parse(g.finishedAt))
    expect(JSON.parse((await httpGet(ports.go, '/healthz')).body)).toMatchObject({ build: { version: '1.1.0' } })
    const after = await mainPids()
    for (const u of [...seeds.units, 'upkeep.service']) expect(after[u], u).toBe(before[u])
  }, 900_000)

  test('the Go app: 1.2.0 (migrates its data, then exits) is rolled back with its data restored', async () => {
    const before = await mainPids()
    const data = await dataDigest(go.dataDir)
    const broken = await update(go.name, '1.2.0')
    expect(broken, JSON.stringify(broken.error)).toMatchObject({ status: 'rolled_back', error: { code: 'HEALTH_CHECK_FAILED' } })
    expect(JSON.parse((await httpGet(ports.go, '/healthz')).body)).toMatchObject({ build: { version: '1.1.0' } })
    // What 1.2.0 migrated is gone again: the data is as it was, and the migrated data kept aside.
    expect(await dataDigest(go.dataDir)).toBe(data)
    expect(broken.dataAside).toBeDefined()
    for (const f of GO_APP.migrationFiles) expect((await sb.exec('test', ['-e', `${broken.dataAside}/var/lib/notes/data/${f}`])).code, f).toBe(0)
    const after = await mainPids()
    for (const u of ['tileserver.service', ...seeds.units, 'upkeep.service']) expect(after[u], u).toBe(before[u])
  }, 600_000)

  test('the seeds’ shape: two units restarted in order (backend first), health on the backend; a frontend that fails rolls both back', async () => {
    const entry = await update(seeds.name, '1.1.0')
    expect(entry).toMatchObject({ status: 'complete' })
    const started = async (u: string) => Number((await sb.execOk('systemctl', ['show', '-p', 'ExecMainStartTimestampMonotonic', '--value', u])).trim())
    expect(await started('seeds-backend.service')).toBeLessThan(await started('seeds-frontend.service'))
    expect(JSON.parse((await httpGet(ports.seedsBackend, '/api/health')).body)).toMatchObject({ version: '1.1.0' })
    expect((await sb.execOk('readlink', [`${seeds.checkout}/current`])).trim()).toBe('.upkeep/releases/v1.1.0')

    const data = await dataDigest(seeds.dataDir)
    const broken = await update(seeds.name, '1.2.0')
    expect(broken, JSON.stringify(broken.error)).toMatchObject({ status: 'rolled_back', error: { code: 'HEALTH_CHECK_FAILED' } })
    expect(broken.error?.message).toContain('seeds-frontend.service')
    expect((await sb.execOk('readlink', [`${seeds.checkout}/current`])).trim()).toBe('.upkeep/releases/v1.1.0')
    for (const u of seeds.units) expect((await sb.execOk('systemctl', ['is-active', u])).trim(), u).toBe('active')
    expect(JSON.parse((await httpGet(ports.seedsBackend, '/api/health')).body)).toMatchObject({ version: '1.1.0' })
    expect(await dataDigest(seeds.dataDir)).toBe(data)
  }, 600_000)

  test('Upkeep updates itself beside them: 1.0.0 → 1.1.0, the apps keep running; its clients saw no error while the apps restarted', async () => {
    const before = await mainPids()
    const id = await api.startUpdate('1.1.0')
    const entry = await api.waitForUpdate(id)
    expect(entry).toMatchObject({ status: 'complete', to: { version: '1.1.0' } })
    const after = await mainPids()
    for (const u of [...tile.units, ...go.units, ...seeds.units]) expect(after[u], u).toBe(before[u])
    const stats = await loop!.stop()
    loop = undefined
    console.log(`client loop on Upkeep's port during the apps' updates: ${stats.requests} requests, ${stats.ok} ok, refused ${stats.refused}, reset ${stats.reset}, non-2xx ${stats.non2xx}, other ${stats.otherErrors}, longest stall ${Math.round(stats.longestStallMs)} ms`)
    expect(stats.requests).toBeGreaterThan(100)
    expect({ refused: stats.refused, reset: stats.reset, non2xx: stats.non2xx, other: stats.otherErrors }).toEqual({ refused: 0, reset: 0, non2xx: 0, other: 0 })
  }, 600_000)
})
