import { execFileSync } from 'node:child_process'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import type { AppSummary } from '../../server/services/apps'
import type { HistoryEntry } from '../../updater/shared/history'
import { startClientLoop, type ClientLoop } from '../support/client-loop'
import { git } from '../support/git-fixtures'
import { createGoAppOrigin, GO_APP } from '../support/go-app'
import { INSTALL_DIR, startUpkeepSandbox, type UpkeepSandbox } from '../support/installed-upkeep'
import { createNpmAppOrigin } from '../support/npm-app-origin'
import { freePort } from '../support/run'
import type { Sandbox } from '../support/sandbox'
import { NODE_APP, nodeAppUnit } from '../support/third-party-apps'
import { createTwoUnitOrigin, TWO_UNIT_APP, twoUnitUnits } from '../support/two-unit-app'
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
const NODE = '/usr/bin/node'

interface AppSetup {
  name: string
  user: string
  checkout: string
  dataDir: string
  units: string[]
}

describe('Upkeep and three apps nobody here wrote, on one host', () => {
  let box: UpkeepSandbox
  let sb: Sandbox
  let api: UpkeepApi
  const ports = { tile: 0, go: 0, seedsBackend: 0, seedsFrontend: 0 }
  const tile: AppSetup = { name: 'tileserver', user: 'tileserver', checkout: '/srv/tileserver', dataDir: '/var/lib/tileserver/data', units: ['tileserver.service'] }
  const go: AppSetup = { name: 'notes', user: 'notes', checkout: '/srv/notes', dataDir: '/var/lib/notes/data', units: ['notes.service'] }
  const seeds: AppSetup = { name: 'seeds', user: 'seeds', checkout: '/srv/seeds', dataDir: '/var/lib/seeds/data', units: ['seeds-backend.service', 'seeds-frontend.service'] }
  let loop: ClientLoop | undefined

  const asUser = (user: string, script: string, timeoutMs = 600_000) => sb.execOk('runuser', ['-u', user, '--', 'sh', '-c', script], { timeoutMs })
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
  const sha = (file: string) => sb.execOk('sha256sum', [file]).then((o) => o.split(' ')[0]!)
  const httpGet = async (port: number, p: string) => {
    const res = await fetch(`http://127.0.0.1:${port}${p}`, { signal: AbortSignal.timeout(5000) })
    return { status: res.status, body: await res.text() }
  }

  const definition = (o: AppSetup & { build: object; health: object; source?: object }) => ({
    schema: 1,
    name: o.name,
    checkout: o.checkout,
    user: o.user,
    source: o.source ?? { git: 'origin' },
    build: o.build,
    run: { units: o.units },
    health: o.health,
    data: { paths: [o.dataDir] },
  })

  beforeAll(async () => {
    box = await startUpkeepSandbox({ label: 'apps' })
    sb = box.sb
    for (const k of Object.keys(ports) as (keyof typeof ports)[]) ports[k] = await freePort()
    await sb.writeFile('/etc/upkeep/upkeep.env', 'GITHUB_API_URL=http://127.0.0.1:9\n', '600')
    const installed = await box.installRelease('v1.0.0', [], { UPKEEP_ADMIN_PASSWORD: ADMIN_PASSWORD })
    if (installed.code !== 0) throw new Error(`install.sh failed:\n${installed.stdout}\n${installed.stderr}`)

    // The apps' origins, served beside Upkeep's.
    const tileOrigin = await createNpmAppOrigin(box.work, { pkg: NODE_APP.pkg, versions: [NODE_APP.versions.install, NODE_APP.versions.next, NODE_APP.versions.later] })
    const broken = path.join(box.work, 'tile-broken')
    git(box.work, ['clone', '-q', tileOrigin.bare, broken])
    git(broken, ['checkout', '-q', `v${NODE_APP.versions.later}`])
    git(broken, ['rm', '-q', 'src/serve_font.js'])
    git(broken, ['commit', '-q', '-m', `${NODE_APP.pkg} ${NODE_APP.versions.later} without src/serve_font.js (a publishing mistake)`])
    git(broken, ['tag', '-a', 'v5.6.1', '-m', 'broken on purpose: a file left out'])
    git(broken, ['push', '-q', 'origin', 'v5.6.1'])
    await createGoAppOrigin(box.work)
    await createTwoUnitOrigin(box.work)
    execFileSync('chmod', ['-R', 'a+rX', box.work])
    const url = (name: string) => box.git.url(name)

    // What each app's operator did before Upkeep: a user, a checkout, a build, data, a unit.
    for (const a of [tile, go, seeds]) {
      const home = path.dirname(a.dataDir)
      await sb.execOk('useradd', ['--system', '--create-home', '--home-dir', home, '--shell', '/usr/sbin/nologin', a.user])
      await sb.execOk('install', ['-d', '-o', a.user, '-g', a.user, a.checkout, a.dataDir])
    }
    await asUser(tile.user, `git clone -q ${url(path.basename(tileOrigin.bare))} ${tile.checkout} && cd ${tile.checkout} && git checkout -q v${NODE_APP.versions.install} && npm_config_nodedir=/usr npm install --omit=dev --no-audit --no-fund --loglevel=error`)
    // TileServer's data: an MBTiles (SQLite) tile set, imported with the sqlite3 tool.
    await asUser(tile.user, `sqlite3 ${tile.dataDir}/tiles.mbtiles "CREATE TABLE metadata (name text, value text); CREATE TABLE tiles (zoom_level integer, tile_column integer, tile_row integer, tile_data blob); INSERT INTO metadata VALUES ('name','t'),('format','png'),('minzoom','0'),('maxzoom','0'),('bounds','-180,-85,180,85'),('center','0,0,0'); INSERT INTO tiles VALUES (0,0,0,X'89504e470d0a1a0a');"`)
    await asUser(go.user, `git clone -q ${url('go-app.git')} ${go.checkout} && cd ${go.checkout} && git checkout -q v1.0.0 && GOPROXY=off GOTOOLCHAIN=local sh build.sh && echo 'hello' > ${go.dataDir}/note.txt`)
    await asUser(seeds.user, `git clone -q ${url('two-unit-app.git')} ${seeds.checkout} && cd ${seeds.checkout} && git checkout -q v1.0.0 && echo 'seeds' > ${seeds.dataDir}/seeds.txt`)
    await sb.writeFile('/etc/systemd/system/tileserver.service', nodeAppUnit({ user: tile.user, checkout: tile.checkout, port: ports.tile, dataDir: tile.dataDir, node: NODE }))
    await sb.writeFile(
      '/etc/systemd/system/notes.service',
      `[Unit]\nDescription=Notes (Go)\n\n[Service]\nUser=${go.user}\nWorkingDirectory=${go.checkout}\nExecStart=${go.checkout}/${GO_APP.binary}\n${Object.entries(GO_APP.env(ports.go, go.dataDir)).map(([k, v]) => `Environment=${k}=${v}`).join('\n')}\nRestart=on-failure\nRestartSec=1\n\n[Install]\nWantedBy=multi-user.target\n`,
    )
    const units = twoUnitUnits({ name: 'seeds', user: seeds.user, checkout: seeds.checkout, dataDir: seeds.dataDir, backendPort: ports.seedsBackend, frontendPort: ports.seedsFrontend, node: NODE })
    await sb.writeFile('/etc/systemd/system/seeds-backend.service', units.backend)
    await sb.writeFile('/etc/systemd/system/seeds-frontend.service', units.frontend)

    // Their definitions (what `upkeep app add` writes) and the updater's access to their paths.
    const defs = [
      definition({
        ...tile,
        build: { layout: 'in-place', commands: NODE_APP.installCommands, env: { npm_config_nodedir: '/usr' }, seed: ['node_modules'], timeoutSeconds: 900 },
        health: { url: `http://127.0.0.1:${ports.tile}${NODE_APP.healthPath}`, version: null, timeoutSeconds: 120 },
      }),
      definition({
        ...go,
        build: { layout: 'in-place', commands: GO_APP.buildCommands, env: GO_APP.buildEnv },
        health: { url: `http://127.0.0.1:${ports.go}${GO_APP.healthPath}`, version: { jsonPointer: GO_APP.versionPointer } },
      }),
      definition({
        ...seeds,
        build: { layout: 'releases', output: '.', commands: [TWO_UNIT_APP.buildCommands.backend, TWO_UNIT_APP.buildCommands.frontend], env: TWO_UNIT_APP.buildEnv },
        health: { url: `http://127.0.0.1:${ports.seedsBackend}${TWO_UNIT_APP.healthPath}`, version: { jsonPointer: TWO_UNIT_APP.versionPointer } },
      }),
    ]
    await sb.execOk('install', ['-d', '-m', '0755', '/etc/upkeep/apps'])
    for (const d of defs) await sb.writeFile(`/etc/upkeep/apps/${d.name}.json`, JSON.stringify(d, null, 2), '644')
    const paths = [tile, go, seeds].flatMap((a) => [a.checkout, path.dirname(a.dataDir)]).join(' ')
    for (const unit of ['upkeep-updater.service', 'upkeep-recover.service']) {
      await sb.writeFile(`/etc/systemd/system/${unit}.d/50-apps.conf`, `[Service]\nReadWritePaths=${paths}\n`)
    }
    await sb.execOk('systemctl', ['daemon-reload'])
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

  test('the Go app: 1.0.0 → 1.1.0, then 1.2.0 (migrates its data, then exits) rolled back with its data restored', async () => {
    const before = await mainPids()
    expect(await update(go.name, '1.1.0')).toMatchObject({ status: 'complete' })
    expect(JSON.parse((await httpGet(ports.go, '/healthz')).body)).toMatchObject({ build: { version: '1.1.0' } })
    const note = await sha(`${go.dataDir}/note.txt`)
    const broken = await update(go.name, '1.2.0')
    expect(broken, JSON.stringify(broken.error)).toMatchObject({ status: 'rolled_back', error: { code: 'HEALTH_CHECK_FAILED' } })
    expect(JSON.parse((await httpGet(ports.go, '/healthz')).body)).toMatchObject({ build: { version: '1.1.0' } })
    expect(await sha(`${go.dataDir}/note.txt`)).toBe(note)
    for (const f of GO_APP.migrationFiles) expect((await sb.exec('test', ['-e', `${go.dataDir}/${f}`])).code, f).toBe(1)
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

    const broken = await update(seeds.name, '1.2.0')
    expect(broken, JSON.stringify(broken.error)).toMatchObject({ status: 'rolled_back', error: { code: 'HEALTH_CHECK_FAILED' } })
    expect(broken.error?.message).toContain('seeds-frontend.service')
    expect((await sb.execOk('readlink', [`${seeds.checkout}/current`])).trim()).toBe('.upkeep/releases/v1.1.0')
    for (const u of seeds.units) expect((await sb.execOk('systemctl', ['is-active', u])).trim(), u).toBe('active')
    expect(JSON.parse((await httpGet(ports.seedsBackend, '/api/health')).body)).toMatchObject({ version: '1.1.0' })
    for (const f of TWO_UNIT_APP.migrationFiles) expect((await sb.exec('test', ['-e', `${seeds.dataDir}/${f}`])).code, f).toBe(1)
  }, 600_000)

  test('two apps at once run side by side, each under its own lock; a second request for a running app is refused (409)', async () => {
    const goId = await apply(go.name, '1.1.0').catch((e: Error) => e.message)
    // 1.1.0 runs already: not newer, refused in preflight. A real update runs beside it:
    const tileId = await apply(tile.name, NODE_APP.versions.later)
    expect((await api.post(`/api/apps/${tile.name}/updates/apply`, { version: NODE_APP.versions.later })).status).toBe(409)
    const [g, t] = await Promise.all([typeof goId === 'string' && goId.length < 40 ? waitFor(go.name, goId) : Promise.resolve(undefined), waitFor(tile.name, tileId)])
    if (g) expect(g).toMatchObject({ status: 'failed', error: { code: 'NOT_NEWER' } })
    expect(t).toMatchObject({ status: 'complete' })
  }, 900_000)

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
