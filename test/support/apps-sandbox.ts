import path from 'node:path'
import { git } from './git-fixtures'
import { createGoAppOrigin, GO_APP } from './go-app'
import type { UpkeepSandbox } from './installed-upkeep'
import { createNpmAppOrigin } from './npm-app-origin'
import { NODE_APP, nodeAppUnit } from './third-party-apps'
import { createTwoUnitOrigin, TWO_UNIT_APP, twoUnitUnits } from './two-unit-app'

// Apps set up on a sandboxed host the way their operators would, before Upkeep is told about them:
// a user, a checkout of a release, a build, data, a unit. Then their definitions (what
// `upkeep app add` writes) and the updater units' access to their paths.

const NODE = '/usr/bin/node'

export interface HostedApp {
  name: string
  user: string
  checkout: string
  dataDir: string
  units: string[]
  /** Where its health endpoint answers (the first unit's port). */
  port: number
  /** Its definition, as JSON. */
  definition: Record<string, unknown>
}

async function addUser(box: UpkeepSandbox, a: { user: string; checkout: string; dataDir: string }): Promise<void> {
  const home = path.dirname(a.dataDir)
  await box.sb.execOk('useradd', ['--system', '--create-home', '--home-dir', home, '--shell', '/usr/sbin/nologin', a.user])
  await box.sb.execOk('install', ['-d', '-o', a.user, '-g', a.user, a.checkout, a.dataDir])
}

const asUser = (box: UpkeepSandbox, user: string, script: string) => box.sb.execOk('runuser', ['-u', user, '--', 'sh', '-c', script], { timeoutMs: 900_000 })

function definition(a: Omit<HostedApp, 'definition' | 'port'>, build: object, health: object): Record<string, unknown> {
  // No soak (health.soakSeconds 0): these tests are about the other steps; soak has tests of its own.
  return { schema: 1, name: a.name, checkout: a.checkout, user: a.user, source: { git: 'origin' }, build, run: { units: a.units }, health: { soakSeconds: 0, ...health }, data: { paths: [a.dataDir] } }
}

/**
 * TileServer GL light from the npm registry (tags of its published versions, plus v5.6.1: 5.6.0's
 * files with src/serve_font.js left out, a release that cannot start), installed in place at
 * `version` with `npm install` (sqlite3 compiled from source: minutes) and an MBTiles tile set.
 */
export async function hostTileServer(box: UpkeepSandbox, port: number, version: string = NODE_APP.versions.install): Promise<HostedApp> {
  const a = { name: 'tileserver', user: 'tileserver', checkout: '/srv/tileserver', dataDir: '/var/lib/tileserver/data', units: ['tileserver.service'] }
  const origin = await createNpmAppOrigin(box.work, { pkg: NODE_APP.pkg, versions: [NODE_APP.versions.install, NODE_APP.versions.next, NODE_APP.versions.later] })
  const broken = path.join(box.work, 'tile-broken')
  git(box.work, ['clone', '-q', origin.bare, broken])
  git(broken, ['checkout', '-q', `v${NODE_APP.versions.later}`])
  git(broken, ['rm', '-q', 'src/serve_font.js'])
  git(broken, ['commit', '-q', '-m', `${NODE_APP.pkg} ${NODE_APP.versions.later} without src/serve_font.js (a publishing mistake)`])
  git(broken, ['tag', '-a', 'v5.6.1', '-m', 'broken on purpose: a file left out'])
  git(broken, ['push', '-q', 'origin', 'v5.6.1'])
  await box.sb.execOk('chmod', ['-R', 'a+rX', origin.bare])
  await addUser(box, a)
  await asUser(box, a.user, `git clone -q ${box.git.url(path.basename(origin.bare))} ${a.checkout} && cd ${a.checkout} && git checkout -q v${version} && npm_config_nodedir=/usr npm install --omit=dev --no-audit --no-fund --loglevel=error`)
  await asUser(
    box,
    a.user,
    `sqlite3 ${a.dataDir}/tiles.mbtiles "CREATE TABLE metadata (name text, value text); CREATE TABLE tiles (zoom_level integer, tile_column integer, tile_row integer, tile_data blob); INSERT INTO metadata VALUES ('name','t'),('format','png'),('minzoom','0'),('maxzoom','0'),('bounds','-180,-85,180,85'),('center','0,0,0'); INSERT INTO tiles VALUES (0,0,0,X'89504e470d0a1a0a');"`,
  )
  await box.sb.writeFile('/etc/systemd/system/tileserver.service', nodeAppUnit({ user: a.user, checkout: a.checkout, port, dataDir: a.dataDir, node: NODE }))
  return {
    ...a,
    port,
    definition: definition(
      a,
      { layout: 'in-place', commands: NODE_APP.installCommands, env: { npm_config_nodedir: '/usr' }, seed: ['node_modules'], timeoutSeconds: 900 },
      { url: `http://127.0.0.1:${port}${NODE_APP.healthPath}`, version: null, timeoutSeconds: 120 },
    ),
  }
}

/** The Go app (written here), in place from its checkout at v1.0.0, built with Debian's Go. */
export async function hostGoApp(box: UpkeepSandbox, port: number): Promise<HostedApp> {
  const a = { name: 'notes', user: 'notes', checkout: '/srv/notes', dataDir: '/var/lib/notes/data', units: ['notes.service'] }
  await createGoAppOrigin(box.work)
  await box.sb.execOk('chmod', ['-R', 'a+rX', path.join(box.work, 'go-app.git')])
  await addUser(box, a)
  await asUser(box, a.user, `git clone -q ${box.git.url('go-app.git')} ${a.checkout} && cd ${a.checkout} && git checkout -q v1.0.0 && GOPROXY=off GOTOOLCHAIN=local sh build.sh && echo hello > ${a.dataDir}/note.txt`)
  const env = Object.entries(GO_APP.env(port, a.dataDir)).map(([k, v]) => `Environment=${k}=${v}`).join('\n')
  await box.sb.writeFile('/etc/systemd/system/notes.service', `[Unit]\nDescription=Notes (Go)\n\n[Service]\nUser=${a.user}\nWorkingDirectory=${a.checkout}\nExecStart=${a.checkout}/${GO_APP.binary}\n${env}\nRestart=on-failure\nRestartSec=1\n\n[Install]\nWantedBy=multi-user.target\n`)
  return {
    ...a,
    port,
    definition: definition(a, { layout: 'in-place', commands: GO_APP.buildCommands, env: GO_APP.buildEnv }, { url: `http://127.0.0.1:${port}${GO_APP.healthPath}`, version: { jsonPointer: GO_APP.versionPointer } }),
  }
}

/** The seeds' shape: a Go backend and a Node frontend, two units running from `current` (first deployed by Upkeep). */
export async function hostSeeds(box: UpkeepSandbox, backendPort: number, frontendPort: number): Promise<HostedApp & { frontendPort: number }> {
  const a = { name: 'seeds', user: 'seeds', checkout: '/srv/seeds', dataDir: '/var/lib/seeds/data', units: ['seeds-backend.service', 'seeds-frontend.service'] }
  await createTwoUnitOrigin(box.work)
  await box.sb.execOk('chmod', ['-R', 'a+rX', path.join(box.work, 'two-unit-app.git')])
  await addUser(box, a)
  await asUser(box, a.user, `git clone -q ${box.git.url('two-unit-app.git')} ${a.checkout} && cd ${a.checkout} && git checkout -q v1.0.0 && echo seeds > ${a.dataDir}/seeds.txt`)
  const units = twoUnitUnits({ name: 'seeds', user: a.user, checkout: a.checkout, dataDir: a.dataDir, backendPort, frontendPort, node: NODE })
  await box.sb.writeFile('/etc/systemd/system/seeds-backend.service', units.backend)
  await box.sb.writeFile('/etc/systemd/system/seeds-frontend.service', units.frontend)
  return {
    ...a,
    port: backendPort,
    frontendPort,
    definition: definition(
      a,
      { layout: 'releases', output: '.', commands: [TWO_UNIT_APP.buildCommands.backend, TWO_UNIT_APP.buildCommands.frontend], env: TWO_UNIT_APP.buildEnv },
      { url: `http://127.0.0.1:${backendPort}${TWO_UNIT_APP.healthPath}`, version: { jsonPointer: TWO_UNIT_APP.versionPointer } },
    ),
  }
}

/** Writes the apps' definitions and lets the updater units write their paths (what `upkeep app add` does). */
export async function defineApps(box: UpkeepSandbox, apps: HostedApp[]): Promise<void> {
  await box.sb.execOk('install', ['-d', '-m', '0755', '/etc/upkeep/apps'])
  for (const a of apps) await box.sb.writeFile(`/etc/upkeep/apps/${a.name}.json`, JSON.stringify(a.definition, null, 2), '644')
  const paths = apps.flatMap((a) => [a.checkout, path.dirname(a.dataDir)]).join(' ')
  for (const unit of ['upkeep-updater.service', 'upkeep-recover.service']) {
    await box.sb.writeFile(`/etc/systemd/system/${unit}.d/50-apps.conf`, `[Service]\nReadWritePaths=${paths}\n`)
  }
  await box.sb.execOk('systemctl', ['daemon-reload'])
}
