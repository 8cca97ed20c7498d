// `npm run demo [-- --dir DIR] [--port N] [--user NAME] [--delete]`: Upkeep updating a sample app
// on this machine, in a throwaway directory, without systemd, root or a network. Everything runs
// through the code production runs: Upkeep's build (server, updater, web UI), its updater
// installing the sample's first release, its server in process mode writing the requests the
// updater takes, the worker building, switching, restarting, health-checking and rolling back.
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { closeSync, openSync } from 'node:fs'
import { chmod, chown, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import net from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { parseAppDefinition } from '../updater/shared/apps/definition'
import { isUpdateError, UpdateError } from '../updater/shared/errors'
import { createAppPaths, createManagerPaths } from '../updater/shared/paths'
import { isProcessAlive, readPidFile } from '../updater/shared/pidfile'
import { demoUser, verifyReachable, type DemoUser } from './demo/demo-user'
import { stopDemoProcesses } from './demo/demo-processes'
import { cloneSample, createSampleOrigin, SAMPLE_APP } from './demo/sample-app'

const root = path.resolve(import.meta.dirname, '..')

const USAGE = `Usage: npm run demo [-- --dir DIR] [--port N] [--user NAME] [--delete]

Builds Upkeep, makes a sample app with three releases (1.0.0, 1.1.0, and a broken 1.2.0) in a
local git origin, installs 1.0.0 with Upkeep's updater and starts Upkeep's web UI. Then update
the sample app from the browser, and watch the broken release roll back by itself.

Options:
  --dir DIR     the throwaway directory (new or empty; default: a new one under ${tmpdir()})
  --port N      Upkeep's port (default: a free one)
  --user NAME   run as root: the unprivileged user the sample app runs and builds as (default nobody)
  --delete      delete the directory when the demo stops (Ctrl-C)
  -h, --help    this help`

class UsageError extends Error {}

interface Options {
  dir: string | undefined
  port: number | undefined
  user: string | undefined
  delete: boolean
}

function parseOptions(argv: string[]): Options | 'help' {
  let values
  try {
    values = parseArgs({ args: argv, options: { dir: { type: 'string' }, port: { type: 'string' }, user: { type: 'string' }, delete: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } }, strict: true }).values
  } catch (err) {
    throw new UsageError((err as Error).message.split('. To specify')[0]!)
  }
  if (values.help) return 'help'
  const port = values.port === undefined ? undefined : Number(values.port)
  if (port !== undefined && (!/^\d+$/.test(values.port!) || port < 1 || port > 65535)) throw new UsageError(`--port must be a port number from 1 to 65535, got "${values.port}"`)
  if (values.user !== undefined && process.getuid?.() !== 0) throw new UsageError('--user is for a demo run as root; otherwise the sample app runs as you')
  return { dir: values.dir, port, user: values.user, delete: values.delete === true }
}

const say = (line = '') => process.stdout.write(line + '\n')

/** A TCP port on 127.0.0.1 nothing listens on now; `wanted` is checked rather than chosen. */
function freePort(wanted?: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.once('error', (err: NodeJS.ErrnoException) =>
      reject(err.code === 'EADDRINUSE' ? new UsageError(`port ${wanted} is in use; pick another with --port, or leave --port out for a free one`) : err),
    )
    s.listen(wanted ?? 0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo
      s.close(() => resolve(port))
    })
  })
}

/** The demo directory: a new one under the temp dir, or --dir when it is new or empty. Others may enter it (the app's user must). */
async function makeDemoDir(wanted: string | undefined): Promise<string> {
  let dir: string
  if (wanted === undefined) {
    dir = await mkdtemp(path.join(tmpdir(), 'upkeep-demo-'))
  } else {
    dir = path.resolve(wanted)
    await mkdir(dir, { recursive: true })
    if ((await readdir(dir)).length) throw new UsageError(`${dir} is not empty; the demo needs a new or empty directory (delete it, or choose another --dir)`)
  }
  await chmod(dir, 0o755)
  return dir
}

/** Runs a command; its output is printed indented as it comes. Throws with the exit code. */
function runShown(argv: string[], opts: { cwd: string; env: NodeJS.ProcessEnv; what: string }): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] })
    const indent = (d: Buffer) => process.stdout.write(d.toString('utf8').replace(/^(?=.)/gm, '    '))
    child.stdout!.on('data', indent)
    child.stderr!.on('data', indent)
    child.once('error', reject)
    child.once('close', (code, signal) => {
      if (code === 0) resolve()
      else reject(new UpdateError('INTERNAL', `${opts.what} failed (${signal ?? `exit ${code}`}); its output is above`))
    })
  })
}

interface Layout {
  dir: string
  /** Upkeep's build; also its APP_DIR (the demo never updates Upkeep itself). */
  upkeep: string
  dataDir: string
  stateDir: string
  appsDir: string
  home: string
  sample: string
  checkout: string
  sampleData: string
  passwordFile: string
  serverLog: string
}

function layout(dir: string): Layout {
  return {
    dir,
    upkeep: path.join(dir, 'upkeep'),
    dataDir: path.join(dir, 'upkeep-data'),
    stateDir: path.join(dir, 'state'),
    appsDir: path.join(dir, 'apps'),
    home: path.join(dir, 'home'),
    sample: path.join(dir, 'sample'),
    checkout: path.join(dir, 'sample', 'checkout'),
    sampleData: path.join(dir, 'sample', 'data'),
    passwordFile: path.join(dir, 'admin-password.txt'),
    serverLog: path.join(dir, 'upkeep-data', 'logs', 'server.log'),
  }
}

/** The sample app's definition, as an operator would write it into /etc/upkeep/apps/sample.json. */
function sampleDefinition(l: Layout, user: DemoUser, port: number): Record<string, unknown> {
  return {
    name: SAMPLE_APP,
    checkout: l.checkout,
    ...(user.switched ? { user: user.name } : {}),
    // Its releases: the v* tags of its checkout's remote (a local bare repository).
    source: { git: 'origin' },
    build: { commands: [[process.execPath, 'build.mjs', '--out', '{out}']], layout: 'releases', timeoutSeconds: 120 },
    // No systemd: Upkeep's process manager starts it (a pidfile and a log in its state dir).
    run: { command: { argv: [process.execPath, '{serverEntry}'], env: { HOST: '127.0.0.1', PORT: String(port), DATA_DIR: l.sampleData } } },
    // A short soak, so the demo shows the step without the default two minutes' wait.
    health: { url: `http://127.0.0.1:${port}/health`, version: { jsonPointer: '/version' }, timeoutSeconds: 20, soakSeconds: 5 },
    data: { paths: [l.sampleData] },
  }
}

/** Upkeep's environment: its own, nothing of the caller's but PATH and the locale. */
function upkeepEnv(l: Layout, port: number, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: l.home,
    APP_DIR: l.upkeep,
    DATA_DIR: l.dataDir,
    UPKEEP_STATE_DIR: l.stateDir,
    UPKEEP_APPS_DIR: l.appsDir,
    UPKEEP_SERVICE_MANAGER: 'process',
    HOST: '127.0.0.1',
    PORT: String(port),
    // Upkeep's own releases would be asked of GitHub; the demo updates the sample app only.
    UPDATE_CHECK_DISABLED: 'true',
    LOG_LEVEL: 'info',
    ...extra,
  }
  for (const k of ['LANG', 'LC_ALL', 'TZ', 'TMPDIR']) if (process.env[k]) env[k] = process.env[k]
  return env
}

async function chownTree(dir: string, user: DemoUser): Promise<void> {
  await chown(dir, user.uid, user.gid)
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) await chown(path.join(e.parentPath, e.name), user.uid, user.gid)
}

async function waitForHealth(url: string, server: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (server.exitCode !== null || server.signalCode !== null) throw new UpdateError('INTERNAL', `Upkeep's server exited (${server.signalCode ?? `exit ${server.exitCode}`})`)
    const ok = await fetch(url, { signal: AbortSignal.timeout(2000) }).then((r) => r.ok, () => false)
    if (ok) return
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new UpdateError('INTERNAL', `Upkeep's server did not answer ${url} within ${timeoutMs / 1000} s`)
}

const isRunning = (child: ChildProcess | undefined): child is ChildProcess => child !== undefined && child.exitCode === null && child.signalCode === null

/** Stops Upkeep's server, then every other process of the demo (demo-processes.ts); returns how many were running. */
async function stopDemo(l: Layout, server: ChildProcess | undefined): Promise<number> {
  const serverRan = isRunning(server)
  if (serverRan) server.kill('SIGTERM')
  const manager = createManagerPaths({ appDir: l.upkeep, dataDir: l.dataDir, stateDir: l.stateDir, appsDir: l.appsDir })
  const pidFiles = [createAppPaths({ name: SAMPLE_APP, checkout: l.checkout, data: { paths: [], backupDir: undefined } }, manager).pidFile, path.join(l.dataDir, 'server.pid')]
  // Without /proc, the processes known by their pidfiles (checked against their start time).
  const known = async () => {
    const pids = isRunning(server) ? [server.pid!] : []
    for (const file of pidFiles) {
      const pf = await readPidFile(file).catch(() => undefined)
      if (pf && isProcessAlive(pf.pid, pf.start)) pids.push(pf.pid)
    }
    return pids
  }
  const stopped = await stopDemoProcesses(l.dir, known)
  return stopped.filter((p) => p !== server?.pid).length + (serverRan ? 1 : 0)
}

async function main(argv: string[]): Promise<number> {
  let opts: Options | 'help'
  try {
    opts = parseOptions(argv)
  } catch (err) {
    if (!(err instanceof UsageError)) throw err
    process.stderr.write(`demo: ${err.message}\n\n${USAGE}\n`)
    return 2
  }
  if (opts === 'help') {
    say(USAGE)
    return 0
  }
  const options = opts
  // What the demo makes (the build, the definition, the state root) is read by the app's user
  // too, and the processes it starts inherit this: a umask of 077 would lock that user out.
  process.umask(0o022)

  let dir: string | undefined
  let server: ChildProcess | undefined
  let stopping: Promise<number> | undefined
  const stop = (code: number, why: string) =>
    (stopping ??= (async () => {
      // Nothing was made yet (a wrong option, no such user): nothing to stop or delete.
      if (!dir) return code
      say(`\n${why}: stopping Upkeep and the sample app…`)
      say(`Stopped ${await stopDemo(layout(dir), server)} process(es).`)
      if (options.delete) {
        await rm(dir, { recursive: true, force: true })
        say(`Deleted ${dir}.`)
      } else {
        say(`The demo's files stay in ${dir}; delete them with: rm -rf ${dir}`)
      }
      return code
    })())
  const stopped = new Promise<number>((resolve) => {
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => void stop(0, sig === 'SIGINT' ? 'Ctrl-C' : sig).then(resolve))
  })

  try {
    const user = demoUser(options.user)
    dir = await makeDemoDir(options.dir)
    const l = layout(dir)
    const port = await freePort(options.port)
    const samplePort = await freePort()
    verifyReachable(user, [process.execPath, '-e', '0'], `run ${process.execPath}`)
    verifyReachable(user, [process.execPath, '-e', 'require("node:fs").readdirSync(process.argv[1])', dir], `enter ${dir}`)
    say(`Upkeep demo in ${dir}${user.switched ? ` (the sample app runs and builds as ${user.name}: Upkeep never runs git or a build as root)` : ''}\n`)

    say('[1/4] Building Upkeep: its server, updater and web UI, as a release is built')
    let t = Date.now()
    await runShown([process.execPath, '--import', 'tsx', path.join(root, 'deploy/build.ts'), '--out', l.upkeep], { cwd: root, env: { ...process.env }, what: 'building Upkeep' })
    say(`      done in ${((Date.now() - t) / 1000).toFixed(1)}s`)
    verifyReachable(user, [process.execPath, path.join(l.upkeep, 'upkeep.mjs'), '--version'], `run ${process.execPath} ${path.join(l.upkeep, 'upkeep.mjs')}`)

    say(`[2/4] Making the sample app: releases v1.0.0, v1.1.0 and a broken v1.2.0 in ${path.join(l.sample, 'origin.git')}`)
    t = Date.now()
    await mkdir(l.sample, { mode: 0o755 })
    const origin = await createSampleOrigin(l.sample)
    cloneSample(origin, l.checkout, 'v1.0.0')
    await mkdir(l.sampleData)
    if (user.switched) await chownTree(l.sample, user)
    for (const d of [l.dataDir, l.stateDir, l.appsDir, l.home]) await mkdir(d, { recursive: true, mode: 0o755 })
    const definition = sampleDefinition(l, user, samplePort)
    parseAppDefinition(definition, `${SAMPLE_APP}.json`)
    await writeFile(path.join(l.appsDir, `${SAMPLE_APP}.json`), JSON.stringify(definition, null, 2) + '\n', { mode: 0o644 })
    if (user.switched) {
      // The server runs as root here and lists the sample's tags with `git ls-remote`; git
      // refuses a repository of another user unless told it is safe.
      await writeFile(path.join(l.home, '.gitconfig'), `[safe]\n\tdirectory = ${origin}\n`)
    }
    say(`      done in ${((Date.now() - t) / 1000).toFixed(1)}s`)

    say(`[3/4] Installing sample 1.0.0 with Upkeep's updater: upkeep --app ${SAMPLE_APP} update v1.0.0 --force`)
    t = Date.now()
    await runShown([process.execPath, path.join(l.upkeep, 'upkeep.mjs'), '--app', SAMPLE_APP, 'update', 'v1.0.0', '--force', '--yes'], {
      cwd: dir,
      env: upkeepEnv(l, port, { LOG_LEVEL: 'warn' }),
      what: 'installing sample 1.0.0',
    })
    say(`      done in ${((Date.now() - t) / 1000).toFixed(1)}s`)

    say("[4/4] Starting Upkeep's server (process mode: no systemd)")
    const password = randomBytes(12).toString('base64url')
    await writeFile(l.passwordFile, password + '\n', { mode: 0o600 })
    await mkdir(path.dirname(l.serverLog), { recursive: true })
    const log = openSync(l.serverLog, 'a', 0o640)
    server = spawn(process.execPath, [path.join(l.upkeep, 'server.mjs')], { cwd: dir, env: upkeepEnv(l, port, { UPKEEP_ADMIN_PASSWORD: password }), stdio: ['ignore', log, log] })
    closeSync(log)
    const url = `http://127.0.0.1:${port}`
    await waitForHealth(`${url}/api/health`, server, 30_000)
    server.once('exit', (code, signal) => !stopping && void stop(1, `Upkeep's server exited (${signal ?? `exit ${code}`}; its log: ${l.serverLog})`).then(() => process.exit(1)))

    say(`
Upkeep is running.

  Web UI      ${url}
  Password    ${password}
              (also in ${l.passwordFile})
  Sample app  http://127.0.0.1:${samplePort}   version 1.0.0${user.switched ? `, runs as ${user.name}` : ''}

What to click:
  1. Sign in, then Apps → sample.
  2. Pick 1.1.0 under "Version to install", then Update now: Upkeep backs up the sample's data,
     builds 1.1.0, switches to it, restarts the app and checks that 1.1.0 answers. Reload the
     sample app's page: 1.1.0, with its visit count kept.
  3. Update now again, to 1.2.0: it migrates the data, then fails to start. Upkeep rolls back by
     itself: 1.1.0 runs again, with its data as it was before the update.

Logs: ${l.serverLog}, ${path.join(l.dataDir, 'logs', 'updater.log')} and the sample app's in ${path.join(l.stateDir, SAMPLE_APP, 'logs')}
Definition of the sample app: ${path.join(l.appsDir, `${SAMPLE_APP}.json`)}
Ctrl-C stops everything.`)
    return await stopped
  } catch (err) {
    // Ctrl-C while setting up: what failed was stopped on purpose.
    if (stopping) return stopping
    const message = err instanceof UsageError ? `demo: ${err.message}` : isUpdateError(err) ? `demo: ${err.message}${err.hint ? `\n  hint: ${err.hint}` : ''}` : `demo: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`
    process.stderr.write(message + '\n')
    if (server && dir) {
      const tail = (await readFile(layout(dir).serverLog, 'utf8').catch(() => '')).split('\n').slice(-20).join('\n')
      if (tail.trim()) process.stderr.write(`Upkeep's server log (last lines):\n${tail}\n`)
    }
    return stop(err instanceof UsageError ? 2 : 1, 'The demo did not start')
  }
}

process.exitCode = await main(process.argv.slice(2))
process.exit()
