import { execFileSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { parseAppDefinition } from '../../updater/shared/apps/definition'
import { createAppPaths, createManagerPaths, type AppPaths } from '../../updater/shared/paths'
import { readPidFile } from '../../updater/shared/pidfile'
import { git } from './git-fixtures'
import { repoRoot } from './paths'
import { buildRelease } from './release-build'
import { freePort, run, type RunResult } from './run'

// A tiny app for the updater to update: no dependencies (npm ci is instant and offline), a build
// that embeds the tag's version, and a server that answers /api/health with it. Its tags:
//   v1.0.0, v1.1.0  good
//   v1.2.0          the build fails
//   v1.3.0          builds, migrates data, never becomes healthy (503)
//   v1.4.0          builds, migrates data, crashes at start
//   v1.5.0          only with `createOrigin(root, { crashLater: true })`: good at first, answers its
//                   health check, then exits 3 s after it started answering (FIXTURE_CRASH_AFTER_MS
//                   in its environment sets another delay): what a soak is for

/** The unprivileged owner of the fixture checkouts: git and npm must run as it, never as root. */
export const OWNER = { uid: 65534, gid: 65534, name: 'nobody' }

const BUILD = `// Fixture build: node build.mjs --out DIR
import { execFileSync } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
const i = process.argv.indexOf('--out')
if (i < 0) { console.error('usage: node build.mjs --out DIR'); process.exit(2) }
const out = process.argv[i + 1]
const version = execFileSync('git', ['describe', '--tags', '--always'], { encoding: 'utf8' }).trim().replace(/^v/, '')
mkdirSync(out, { recursive: true })
if (process.env.FIXTURE_BUILD_DELAY_MS) {
  writeFileSync(out + '/building.pid', String(process.pid))
  await new Promise((r) => setTimeout(r, Number(process.env.FIXTURE_BUILD_DELAY_MS)))
}
if (process.env.FIXTURE_BUILD_FILL_MB) writeFileSync(out + '/assets.bin', Buffer.alloc(Number(process.env.FIXTURE_BUILD_FILL_MB) << 20, 1))
writeFileSync(out + '/app.mjs', readFileSync('server.src.mjs', 'utf8').replace('__VERSION__', version))
console.log('built fixture ' + version)
`

const FAILING_BUILD = `console.log('compiling 3 files')
console.error("src/app.ts(12,5): error TS2322: Type 'string' is not assignable to type 'number'.")
process.exit(1)
`

type Behaviour = 'good' | 'unhealthy' | 'crash' | 'crash-later'

function serverSource(behaviour: Behaviour): string {
  return `// Fixture server (${behaviour})
import http from 'node:http'
import { appendFileSync, writeFileSync } from 'node:fs'
const version = '__VERSION__'
const dataDir = process.env.DATA_DIR
${behaviour === 'good' || behaviour === 'crash-later' ? '' : `// A "migration": the new version changes data/ before it (fails to) come up.
writeFileSync(dataDir + '/schema-version', '2\\n')
appendFileSync(dataDir + '/notes.txt', 'migrated by ' + version + '\\n')`}
${behaviour === 'crash' ? "throw new Error('cannot read config: missing SECRET_KEY')" : ''}
const server = http.createServer((req, res) => {
  if (req.url === '/api/health') {
    res.writeHead(${behaviour === 'unhealthy' ? 503 : 200}, { 'content-type': 'application/json' })
    return res.end(JSON.stringify({ status: '${behaviour === 'unhealthy' ? 'starting' : 'ok'}', version }))
  }
  res.writeHead(404).end()
})
server.listen(Number(process.env.PORT), process.env.HOST || '127.0.0.1', () => {
  console.log('fixture ' + version + ' listening')
${
  behaviour === 'crash-later'
    ? `  // Healthy long enough to pass a health check, then gone: what a soak is for.
  setTimeout(() => {
    console.error('fatal: lost the connection to its database')
    process.exit(3)
  }, Number(process.env.FIXTURE_CRASH_AFTER_MS || 3000))`
    : ''
}
})
process.on('SIGTERM', () => server.close(() => process.exit(0)))
`
}


/** A bare origin with the five tags (six with `crashLater`); returns its path. Made once per test file and shared. */
export async function createOrigin(root: string, opts: { crashLater?: boolean } = {}): Promise<string> {
  // The owner (nobody) must reach the origin through its parent.
  await mkdir(root, { recursive: true })
  await chmod(root, 0o755)
  const work = path.join(root, 'origin-work')
  await mkdir(work, { recursive: true })
  git(work, ['init', '-q'])
  const write = (name: string, content: string) => writeFile(path.join(work, name), content)
  await write('package.json', JSON.stringify({ name: 'fixture-app', version: '0.0.0', private: true, type: 'module', scripts: { build: 'node build.mjs' } }, null, 2) + '\n')
  await write('package-lock.json', JSON.stringify({ name: 'fixture-app', version: '0.0.0', lockfileVersion: 3, requires: true, packages: { '': { name: 'fixture-app', version: '0.0.0' } } }, null, 2) + '\n')
  await write('.gitignore', 'node_modules/\n')
  await write('upkeep.json', JSON.stringify({ serverEntry: 'app.mjs' }, null, 2) + '\n')
  await write('build.mjs', BUILD)
  const versions: [string, Behaviour, boolean][] = [
    ['v1.0.0', 'good', true],
    ['v1.1.0', 'good', true],
    ['v1.2.0', 'good', false],
    ['v1.3.0', 'unhealthy', true],
    ['v1.4.0', 'crash', true],
    ...(opts.crashLater ? [['v1.5.0', 'crash-later', true] as [string, Behaviour, boolean]] : []),
  ]
  for (const [tag, behaviour, builds] of versions) {
    await write('server.src.mjs', serverSource(behaviour))
    await write('build.mjs', builds ? BUILD : FAILING_BUILD)
    await write('CHANGES.txt', `${tag}\n`)
    git(work, ['add', '-A'])
    git(work, ['commit', '-q', '-m', `release ${tag}`])
    git(work, ['tag', '-a', tag, '-m', tag])
  }
  const bare = path.join(root, 'origin.git')
  git(root, ['clone', '-q', '--bare', work, bare])
  return bare
}

export interface Fixture {
  root: string
  appDir: string
  /** The app's data (its definition's data path). */
  dataDir: string
  backupDir: string
  /** Where its update state lives (journal, status, history, lock, pidfile). */
  paths: AppPaths
  /** The app definition's JSON (rewrite with `define`). */
  definition: Record<string, unknown>
  port: number
  env: NodeJS.ProcessEnv
  /** Rewrites the app's definition (e.g. to give its build an environment variable). */
  define(change: (d: Record<string, unknown>) => void): Promise<void>
  /** Runs the real updater (from the sources, through tsx) against this app (`--app fixture` added where it applies). */
  upkeep(args: string[], extraEnv?: NodeJS.ProcessEnv): Promise<RunResult>
  /** GET /api/health, or undefined when nothing answers. */
  health(): Promise<{ status: number; version?: string } | undefined>
  /** sha256 of every app data file (a database by its SQL dump), by relative path. */
  dataDigest(): Promise<Record<string, string>>
  head(): string
  currentTarget(): Promise<string>
  stop(): Promise<void>
}

export const FIXTURE_APP = 'fixture'
const PER_APP = ['update', 'rollback', 'history', 'recover', 'status', 'check']

/** `soakSec`: the definition's health.soakSeconds (default 0 here: most tests are about other steps). */
export async function createFixture(origin: string, opts: { healthTimeoutSec?: number; soakSec?: number; start?: boolean } = {}): Promise<Fixture> {
  const root = await mkdtemp(path.join(tmpdir(), 'upkeep-fixture-'))
  await chmod(root, 0o755)
  const appDir = path.join(root, 'app')
  git(root, ['clone', '-q', origin, appDir])
  git(appDir, ['reset', '-q', '--hard', 'v1.0.0'])
  const dataDir = path.join(appDir, 'data')
  const backupDir = path.join(appDir, 'backups')

  // Upkeep's side: its data dir (requests), the apps' state root (root's), the definitions (root's).
  const managerData = path.join(root, 'upkeep-data')
  const stateRoot = path.join(root, 'state')
  const appsDir = path.join(root, 'apps')
  for (const d of [managerData, stateRoot, appsDir]) await mkdir(d, { recursive: true, mode: 0o755 })
  const port = await freePort()
  const definition: Record<string, unknown> = {
    name: FIXTURE_APP,
    checkout: appDir,
    build: { commands: [['node', 'build.mjs', '--out', '{out}']] },
    run: { command: { argv: [process.execPath, '{serverEntry}'], env: { PORT: String(port), HOST: '127.0.0.1', DATA_DIR: dataDir } } },
    health: { url: `http://127.0.0.1:${port}/api/health`, version: { jsonPointer: '/version' }, timeoutSeconds: opts.healthTimeoutSec ?? 5, soakSeconds: opts.soakSec ?? 0 },
    data: { paths: ['data'], backupDir },
  }
  const defFile = path.join(appsDir, `${FIXTURE_APP}.json`)
  await writeFile(defFile, JSON.stringify(definition, null, 2), { mode: 0o644 })
  const manager = createManagerPaths({ appDir: repoRoot, dataDir: managerData, stateDir: stateRoot, appsDir })
  const paths = createAppPaths(parseAppDefinition(definition), manager)
  // "Installed" v1.0.0: built by the updater's build step into a release directory, live through `current`.
  const release = await buildRelease(paths, 'v1.0.0', parseAppDefinition(definition))
  await symlink(path.relative(appDir, release), path.join(appDir, 'current'))

  // The app's data: text, a binary upload, and a live SQLite database.
  await mkdir(path.join(dataDir, 'uploads'), { recursive: true })
  await writeFile(path.join(dataDir, 'notes.txt'), 'hello from 1.0.0\n')
  await writeFile(path.join(dataDir, 'schema-version'), '1\n')
  await writeFile(path.join(dataDir, 'uploads', 'photo.bin'), randomBytes(256 * 1024))
  execFileSync('sqlite3', [path.join(dataDir, 'app.db'), "CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT); INSERT INTO users(name) VALUES ('ada'),('grace');"])
  execFileSync('chown', ['-R', `${OWNER.uid}:${OWNER.gid}`, appDir, origin])

  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    DATA_DIR: managerData,
    UPKEEP_STATE_DIR: stateRoot,
    UPKEEP_APPS_DIR: appsDir,
    UPKEEP_SERVICE_MANAGER: 'process',
    LOG_LEVEL: 'info',
  }
  const upkeep = (args: string[], extraEnv: NodeJS.ProcessEnv = {}) =>
    run(process.execPath, [path.join(repoRoot, 'updater/bin.mjs'), ...(PER_APP.includes(args[0]!) ? ['--app', FIXTURE_APP] : []), ...args], { cwd: root, env: { ...env, ...extraEnv }, timeoutMs: 120_000 })

  const fixture: Fixture = {
    root,
    appDir,
    dataDir,
    backupDir,
    paths,
    definition,
    port,
    env,
    async define(change) {
      change(definition)
      await writeFile(defFile, JSON.stringify(definition, null, 2), { mode: 0o644 })
    },
    upkeep,
    async health() {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/api/health`, { signal: AbortSignal.timeout(2000) })
        const body = (await res.json().catch(() => ({}))) as { version?: string }
        return { status: res.status, ...(body.version ? { version: body.version } : {}) }
      } catch {
        return undefined
      }
    },
    async dataDigest() {
      const out: Record<string, string> = {}
      for (const e of await readdir(dataDir, { withFileTypes: true, recursive: true })) {
        const rel = path.relative(dataDir, path.join(e.parentPath, e.name))
        if (!e.isFile()) continue
        // A database is compared by content: SQLite's online backup is not a byte-for-byte copy.
        const content = rel.endsWith('.db') ? execFileSync('sqlite3', [path.join(dataDir, rel), '.dump']) : await readFile(path.join(dataDir, rel))
        out[rel] = createHash('sha256').update(content).digest('hex')
      }
      return out
    },
    head: () => git(appDir, ['rev-parse', 'HEAD']),
    async currentTarget() {
      return (await import('node:fs/promises')).readlink(path.join(appDir, 'current'))
    },
    async stop() {
      const pf = await readPidFile(paths.pidFile)
      if (pf) {
        try {
          process.kill(pf.pid, 'SIGKILL')
        } catch {
          /* gone */
        }
      }
      await rm(root, { recursive: true, force: true })
    },
  }
  if (opts.start !== false) await startServer(fixture).catch(async (err) => {
    await fixture.stop()
    throw err
  })
  return fixture
}

/** Starts the installed version as the process service manager would, as the app's user (`upkeep` has no start command). */
export async function startServer(f: Fixture): Promise<void> {
  await mkdir(f.paths.stateDir, { recursive: true, mode: 0o755 })
  execFileSync('chown', [`${OWNER.uid}:${OWNER.gid}`, f.paths.stateDir])
  const command = (f.definition.run as { command: { argv: string[]; env: Record<string, string> } }).command
  const opts = { paths: { appDir: f.appDir, current: f.paths.current, pidFile: f.paths.pidFile, logs: f.paths.logs }, command: { argv: command.argv }, env: { PATH: process.env.PATH!, ...command.env } }
  const r = await run(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'test/support/start-app.ts'), JSON.stringify(opts)], { uid: OWNER.uid, gid: OWNER.gid, cwd: repoRoot, timeoutMs: 60_000 })
  if (r.code !== 0) throw new Error(`cannot start the fixture server: ${r.stderr}`)
  const deadline = Date.now() + 10_000
  while (Date.now() < deadline) {
    if ((await f.health())?.status === 200) return
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`fixture server did not start:\n${await readFile(path.join(f.paths.logs, 'app.log'), 'utf8').catch(() => '')}`)
}
