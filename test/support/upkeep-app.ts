import { execFileSync } from 'node:child_process'
import { chmod, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { isProcessAlive, readPidFile } from '../../updater/shared/pidfile'
import { OWNER } from './fixture-app'
import { copyProject, git } from './git-fixtures'
import { repoRoot } from './paths'
import { freePort, run } from './run'

// Upkeep itself as the app being updated, in process mode: a bare origin of this repository with
// release tags, a checkout of v1.0.0 built into .upkeep/releases/v1.0.0 and live as `current`,
// and its server started the way the process service manager starts it. The web UI tests click
// through real updates of it.
//
// Releases build fast: their upkeep.json links this checkout's node_modules instead of `npm ci`
// (the build itself — esbuild, Vite, the version from git describe — is the real one).

export type Behaviour = 'good' | 'crash-at-start'

export interface UpkeepRelease {
  tag: string
  behaviour: Behaviour
}

export async function createUpkeepOrigin(root: string, releases: UpkeepRelease[]): Promise<string> {
  await mkdir(root, { recursive: true })
  await chmod(root, 0o755)
  const work = path.join(root, 'origin-work')
  await copyProject(work)
  git(work, ['init', '-q'])
  const buildCommands = [
    ['ln', '-sfn', path.join(repoRoot, 'node_modules'), 'node_modules'],
    ['npm', 'run', 'build', '--silent', '--', '--out', '{out}'],
  ]
  await writeFile(path.join(work, 'upkeep.json'), JSON.stringify({ buildCommands }, null, 2) + '\n')
  const mainFile = path.join(work, 'server/main.ts')
  const goodMain = await readFile(mainFile, 'utf8')
  for (const { tag, behaviour } of releases) {
    await writeFile(
      mainFile,
      behaviour === 'crash-at-start' ? `// A broken release: the server dies before it listens.\nthrow new Error('${tag} is broken on purpose')\n${goodMain}` : goodMain,
    )
    await writeFile(path.join(work, 'CHANGES.txt'), `${tag}\n`)
    git(work, ['add', '-A'])
    git(work, ['commit', '-q', '-m', `release ${tag}`])
    git(work, ['tag', '-a', tag, '-m', tag])
  }
  const bare = path.join(root, 'origin.git')
  git(root, ['clone', '-q', '--bare', work, bare])
  await rm(work, { recursive: true, force: true })
  return bare
}

export interface UpkeepInstall {
  root: string
  appDir: string
  dataDir: string
  port: number
  url: string
  env: NodeJS.ProcessEnv
  health(): Promise<{ version: string; commit: string } | undefined>
  serverLog(): Promise<string>
  stop(): Promise<void>
}

/** Clones `origin` at `tag`, builds it as `current`, and starts its server in process mode. */
export async function installUpkeep(origin: string, tag: string, extraEnv: NodeJS.ProcessEnv): Promise<UpkeepInstall> {
  const root = await mkdtemp(path.join(tmpdir(), 'upkeep-ui-'))
  await chmod(root, 0o755)
  const appDir = path.join(root, 'app')
  const home = path.join(root, 'home')
  await mkdir(home)
  git(root, ['clone', '-q', origin, appDir])
  git(appDir, ['checkout', '-q', '--detach', tag])
  const release = path.join(appDir, '.upkeep', 'releases', tag)
  await symlink(path.join(repoRoot, 'node_modules'), path.join(appDir, 'node_modules'))
  execFileSync('npm', ['run', 'build', '--silent', '--', '--out', release], { cwd: appDir, stdio: ['ignore', 'ignore', 'inherit'] })
  await rm(path.join(appDir, 'node_modules'))
  await symlink(`.upkeep/releases/${tag}`, path.join(appDir, 'current'))
  const dataDir = path.join(appDir, 'data')
  await mkdir(dataDir)
  await writeFile(path.join(dataDir, 'notes.txt'), `written by ${tag}\n`)
  execFileSync('chown', ['-R', `${OWNER.uid}:${OWNER.gid}`, root, origin])

  const port = await freePort()
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: home,
    APP_DIR: appDir,
    DATA_DIR: dataDir,
    HOST: '127.0.0.1',
    PORT: String(port),
    UPKEEP_SERVICE_MANAGER: 'process',
    LOG_LEVEL: 'info',
    ...extraEnv,
  }
  // Started as its user, the way the process service manager starts it.
  const startOpts = {
    paths: { appDir, current: path.join(appDir, 'current'), pidFile: path.join(dataDir, 'server.pid'), logs: path.join(dataDir, 'logs') },
    command: { argv: [process.execPath, '{serverEntry}'] },
    env,
    logName: 'server.log',
  }
  const start = () => run(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'test/support/start-app.ts'), JSON.stringify(startOpts)], { uid: OWNER.uid, gid: OWNER.gid, cwd: repoRoot, timeoutMs: 60_000 })
  const url = `http://127.0.0.1:${port}`
  const install: UpkeepInstall = {
    root,
    appDir,
    dataDir,
    port,
    url,
    env,
    async health() {
      try {
        const res = await fetch(`${url}/api/health`, { signal: AbortSignal.timeout(2000) })
        return res.ok ? ((await res.json()) as { version: string; commit: string }) : undefined
      } catch {
        return undefined
      }
    },
    serverLog: () => readFile(path.join(dataDir, 'logs', 'server.log'), 'utf8').catch(() => ''),
    async stop() {
      // Whatever server runs now (the updater may have started a new one): its pidfile says which.
      const pf = await readPidFile(path.join(dataDir, 'server.pid'))
      if (pf) {
        try {
          process.kill(pf.pid, 'SIGTERM')
        } catch {
          /* gone */
        }
        // It writes its last files (the notification outbox) as it stops: removed only after it is gone.
        const deadline = Date.now() + 15_000
        while (isProcessAlive(pf.pid, pf.start) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
        if (isProcessAlive(pf.pid, pf.start)) process.kill(pf.pid, 'SIGKILL')
      }
      await rm(root, { recursive: true, force: true })
    },
  }
  const started = await start()
  if (started.code !== 0) throw new Error(`cannot start Upkeep ${tag}: ${started.stderr}`)
  const deadline = Date.now() + 20_000
  while (Date.now() < deadline) {
    if (await install.health()) return install
    await new Promise((r) => setTimeout(r, 100))
  }
  const log = await install.serverLog()
  await install.stop()
  throw new Error(`Upkeep ${tag} did not start:\n${log}`)
}
