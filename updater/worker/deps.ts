import { chmod, mkdir, stat } from 'node:fs/promises'
import path from 'node:path'
import type { AppDefinition } from '../shared/apps/definition'
import type { Config } from '../shared/config'
import { UpdateError } from '../shared/errors'
import { fileHistory } from '../shared/history'
import { fileJournal } from '../shared/journal'
import { createLogger, type Logger } from '../shared/log'
import { createAppPaths, createManagerPaths, UPKEEP_APP, type AppPaths } from '../shared/paths'
import { fileStatus } from '../shared/status'
import { currentBuild, isBuilt } from '../shared/version'
import { createRunTool } from '../artifacts/run-tool'
import { cleanEnv } from '../adapters/clean-env'
import { systemClock } from '../shared/clock'
import { createExec, type RunAs } from '../adapters/exec'
import { userById } from '../adapters/fs'
import { createGit } from '../adapters/git'
import { createHealthProbe } from '../adapters/http'
import { createUpdateLock } from '../adapters/lock'
import { createProcessManager } from '../adapters/process-manager'
import type { ServiceManager } from '../adapters/service-manager'
import { brokeredServices } from '../broker/ipc'
import { consoleStatus } from '../console-status'
import type { RunDeps } from '../run'

export interface WorkerOptions {
  config: Config
  app: AppDefinition
  /** Boot mode: the app is not up; never touch services. */
  boot?: boolean
  signal?: AbortSignal
  /** A person watches: progress lines on stdout, logs on stderr only when LOG_LEVEL asks. */
  progress: boolean
  json: boolean
}

/** Services are never touched in boot mode: a stand-in that says so if anything tries. */
const NO_SERVICES: ServiceManager = {
  kind: 'process',
  units: [],
  restart: () => Promise.reject(new Error('boot mode does not restart services')),
  start: () => Promise.reject(new Error('boot mode does not start services')),
  stop: () => Promise.resolve(),
  state: () => Promise.resolve({ active: 'unknown', subState: 'boot', mainPid: undefined, restarts: 0, exitStatus: undefined }),
  recentLogs: () => Promise.resolve([]),
}

/** A service manager that cannot be built fails the update where it is first used (restart), not at start. */
function deferredError(err: unknown, units: readonly string[]): ServiceManager {
  const reject = () => Promise.reject(err)
  return { ...NO_SERVICES, units, restart: reject, start: reject, stop: reject }
}

/** Where an app listens, when its health URL is on this machine: something else there is refused before a start. */
function localListen(url: string): { host: string; port: number } | undefined {
  const u = new URL(url)
  const host = u.hostname.replace(/^\[|\]$/g, '')
  if (!['127.0.0.1', 'localhost', '::1'].includes(host)) return undefined
  return { host, port: Number(u.port || (u.protocol === 'https:' ? 443 : 80)) }
}

/** How the app is run: systemd units (through the broker, which alone may run systemctl), or its command. */
export function appServices(o: { config: Config; app: AppDefinition; paths: AppPaths; user: RunAs; log: Logger }): ServiceManager {
  const { config, app, paths } = o
  if (config.serviceManager === 'systemd') {
    if (!app.run.units.length) return deferredError(new UpdateError('BAD_CONFIG', `${app.name} has no systemd units ("run.units" in its definition)`), [])
    try {
      return brokeredServices(app.run.units)
    } catch (err) {
      return deferredError(err, app.run.units)
    }
  }
  const command = app.run.command
  if (!command) return deferredError(new UpdateError('BAD_CONFIG', `${app.name} has no command to start it without systemd ("run.command" in its definition)`), [])
  const own = app.name === UPKEEP_APP
  // Upkeep's own server reads its whole configuration from the environment it was started with;
  // any other app starts in the clean environment plus what its definition adds.
  const env = own ? withoutUpdaterVariables(process.env) : cleanEnv(o.user, { extra: command.env })
  return createProcessManager({
    paths,
    command,
    env,
    ...(own ? { listen: { host: config.host, port: config.port }, logName: 'server.log' } : localListen(app.health.url) ? { listen: localListen(app.health.url)! } : {}),
    log: o.log,
  })
}

/** The updater's own knobs and systemd's socket variables are not the server's. */
function withoutUpdaterVariables(env: NodeJS.ProcessEnv): Record<string, string | undefined> {
  const out = { ...env }
  for (const k of Object.keys(out)) if (k.startsWith('UPKEEP_TEST_') || k.startsWith('LISTEN_') || k === 'UPKEEP_RUNNING_COPY' || k === 'UPKEEP_UPDATER_COPIES') delete out[k]
  return out
}

/**
 * Who this process is: the app's user. HOME is theirs when it is a directory of theirs outside
 * the checkout (npm's cache, git's config), else a directory in the app's state.
 */
export async function selfUser(paths: AppPaths): Promise<RunAs> {
  const uid = process.getuid?.() ?? 0
  const user = await userById(uid)
  const home = process.env.HOME || user.home
  const insideCheckout = home === paths.appDir || home.startsWith(paths.appDir + path.sep)
  const usable = home && !insideCheckout && (await stat(home).then((s) => s.isDirectory() && s.uid === uid, () => false))
  if (usable) return { ...user, gid: process.getgid?.() ?? user.gid, home }
  const own = path.join(paths.stateDir, 'home')
  await mkdir(own, { recursive: true, mode: 0o700 })
  return { ...user, gid: process.getgid?.() ?? user.gid, home: own }
}

/** The app's state directory, readable by the server (another user), made if this user may. */
async function ensureStateDir(paths: AppPaths, app: AppDefinition): Promise<void> {
  try {
    await mkdir(paths.stateDir, { recursive: true })
    if (app.name !== UPKEEP_APP) await chmod(paths.stateDir, 0o755)
  } catch (err) {
    throw new UpdateError('NOT_FOUND', `the state directory of ${app.name}, ${paths.stateDir}, is missing or not writable: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, {
      hint: `Run as root: upkeep app check ${app.name} (it makes the directory, owned by the app's user)`,
    })
  }
}

/**
 * Upkeep's GITHUB_TOKEN is its own; another app's release downloads get it only when its (root's)
 * definition says so. Without systemd every app's update runs in one process, so this holds there too. Pure.
 */
export function githubTokenFor(app: AppDefinition, token: string | undefined): string | undefined {
  return token && (app.name === UPKEEP_APP || app.artifacts?.token === 'GITHUB_TOKEN') ? token : undefined
}

/** The real dependencies of an update of `app`, run as the current user (the app's). */
export async function createWorkerDeps(o: WorkerOptions): Promise<{ deps: RunDeps; paths: AppPaths; log: Logger }> {
  const { config, app } = o
  // Builds and releases readable by others (root starts Upkeep's own updater from its release
  // without reading anyone's private files); private files (backups, secrets) set their own modes.
  process.umask(0o022)
  const paths = createAppPaths(app, createManagerPaths(config))
  // JSON lines on stdout for journald (apply-request). A person at the CLI reads the progress
  // lines instead, so logs go to stderr and only when LOG_LEVEL asks for them.
  const forPerson = o.progress || o.json
  const level = forPerson && !process.env.LOG_LEVEL?.trim() ? 'fatal' : config.logLevel
  const log = createLogger({ level, name: 'upkeep-updater', fd: forPerson ? 2 : 1 }).child({ app: app.name })
  await ensureStateDir(paths, app)
  const user = await selfUser(paths)
  const env = cleanEnv(user, { extra: app.build.env })
  const killAt = isBuilt() ? undefined : process.env.UPKEEP_TEST_KILL_AT
  const deps: RunDeps = {
    app,
    paths,
    tunables: { staleAfterMs: config.staleAfterMs },
    exec: createExec({ env }),
    git: createGit(app.checkout, { env, ...(app.source.kind === 'git' ? { remote: app.source.remote } : {}) }),
    services: o.boot ? NO_SERVICES : appServices({ config, app, paths, user, log }),
    health: createHealthProbe(app.health),
    clock: systemClock,
    log,
    journal: fileJournal(paths.journal),
    status: consoleStatus(fileStatus(paths.status), o.progress && !o.json),
    history: fileHistory(paths.history),
    lock: createUpdateLock(paths, { log, staleAfterMs: config.staleAfterMs }),
    user,
    artifacts: {
      fetch: (input, init) => globalThis.fetch(input, init),
      run: createRunTool(),
      githubApiUrl: config.githubApiUrl,
      ...(githubTokenFor(app, config.githubToken) ? { githubToken: githubTokenFor(app, config.githubToken)! } : {}),
      userAgent: `upkeep/${currentBuild().version}`,
    },
    ...(o.signal ? { signal: o.signal } : {}),
    // Test-only (never in a built bundle): SIGKILL ourselves right after journaling "step:phase".
    ...(killAt ? { onJournal: (step: string, phase: string) => (`${step}:${phase}` === killAt ? process.kill(process.pid, 'SIGKILL') : undefined) } : {}),
  }
  return { deps, paths, log }
}
