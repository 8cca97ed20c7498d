import { spawn } from 'node:child_process'
import { chown, lstat, mkdir } from 'node:fs/promises'
import path from 'node:path'
import type { AppDefinition } from '../shared/apps/definition'
import type { Config } from '../shared/config'
import { UpdateError } from '../shared/errors'
import type { Logger } from '../shared/log'
import { createAppPaths, createManagerPaths, UPKEEP_APP } from '../shared/paths'
import { isBuilt } from '../shared/version'
import { cleanEnv } from '../adapters/clean-env'
import type { RunAs } from '../adapters/exec'
import { isRoot, ownerOf, userByName } from '../adapters/fs'
import { createSystemd } from '../adapters/systemd'
import { serveServices } from './ipc'

/** Every variable the configuration reads (config.ts): the worker builds the same paths from them. */
export const CONFIG_VARIABLES = [
  'PORT',
  'HOST',
  'APP_DIR',
  'DATA_DIR',
  'BACKUP_DIR',
  'UPDATE_REPO',
  'UPKEEP_ARTIFACTS_URL',
  'GITHUB_API_URL',
  'UPDATE_CHECK_DISABLED',
  'UPKEEP_SERVICE_MANAGER',
  'LOG_LEVEL',
  'UPKEEP_STATE_DIR',
  'UPKEEP_APPS_DIR',
  'UPKEEP_HEALTH_TIMEOUT',
  'UPKEEP_BACKUP_KEEP',
  'UPKEEP_STALE_AFTER',
  'UPKEEP_SOAK',
  'NODE_ENV',
]

/** The user an app is updated as: its definition's `user`, else the checkout's owner. */
export async function appUser(app: AppDefinition): Promise<RunAs> {
  let user: RunAs
  if (app.user) {
    const found = await userByName(app.user)
    if (!found) throw new UpdateError('BAD_CONFIG', `${app.name}: there is no user "${app.user}"`, { hint: `Create it (useradd --system ${app.user}) or fix "user" in the app definition.` })
    user = found
  } else {
    try {
      user = await ownerOf(app.checkout)
    } catch (err) {
      throw new UpdateError('NOT_FOUND', `${app.name}: the checkout ${app.checkout} does not exist (${(err as NodeJS.ErrnoException).code})`, {
        hint: app.name === UPKEEP_APP ? 'Set APP_DIR to the app’s git checkout.' : `Fix "checkout" in the definition of ${app.name}.`,
      })
    }
  }
  // A checkout of root's is root's to recover; an update of it is refused by its preflight.
  return user
}

/**
 * The environment the worker starts in: the clean one, plus the configuration (so it finds the
 * same paths) and, for Upkeep's own update, the rest of Upkeep's environment (its server is
 * started from it without systemd). Secrets of Upkeep's (GITHUB_TOKEN) reach only Upkeep's worker,
 * and the worker of an app whose definition (root's) asks for the token to download its private
 * release assets (`"artifacts": {"github": …, "token": "GITHUB_TOKEN"}`).
 */
export function workerEnv(app: AppDefinition, user: RunAs, extra: Record<string, string> = {}): Record<string, string> {
  const env = cleanEnv(user)
  const own = app.name === UPKEEP_APP
  const token = app.artifacts?.token === 'GITHUB_TOKEN'
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined) continue
    const testOnly = k.startsWith('UPKEEP_TEST_') && !isBuilt()
    if (own || CONFIG_VARIABLES.includes(k) || testOnly || (token && k === 'GITHUB_TOKEN')) env[k] = v
  }
  for (const k of ['LISTEN_FDS', 'LISTEN_PID', 'LISTEN_FDNAMES', 'UPKEEP_ADMIN_PASSWORD', 'UPKEEP_RUNNING_COPY', 'INVOCATION_ID']) delete env[k]
  // The user's own identity wins over the caller's (root's HOME, USER).
  Object.assign(env, { HOME: user.home || '/', USER: user.name, LOGNAME: user.name }, extra)
  return env
}

/**
 * An app's state directory under a root-owned state root: made by root (the parent is root's,
 * so nothing the server or another app controls is followed), then given to the app's user.
 */
export async function ensureStateDirAsRoot(config: Config, app: AppDefinition, user: RunAs): Promise<void> {
  if (app.name === UPKEEP_APP || !isRoot()) return
  const dir = createAppPaths(app, createManagerPaths(config)).stateDir
  const root = config.stateDir
  const s = await lstat(root).catch(() => undefined)
  if (!s) await mkdir(root, { recursive: true, mode: 0o755 })
  else if (!s.isDirectory() || s.uid !== 0) {
    throw new UpdateError('FOREIGN_OWNER', `${root} (UPKEEP_STATE_DIR) must be a directory of root's`, { hint: `chown root: ${root} && chmod 755 ${root}` })
  }
  const d = await lstat(dir).catch(() => undefined)
  if (!d) {
    await mkdir(dir, { mode: 0o755 })
    await chown(dir, user.uid, user.gid)
  } else if (!d.isDirectory() || d.uid !== user.uid) {
    throw new UpdateError('FOREIGN_OWNER', `${dir} must be a directory of ${user.name}'s`, { hint: `chown ${user.name}: ${dir}` })
  }
}

export interface WorkerRun {
  config: Config
  app: AppDefinition
  /** The worker's command and its arguments: `update v1.2.0 --yes`, `recover --boot`… */
  args: string[]
  log: Logger
  /** Where the updater's copies live (the worker may hand over to the copy that started an update). */
  copiesDir?: string
  /** A worker killed by a signal takes this process with it the same way (a person's command ends as its work did). */
  mirrorSignal?: boolean
}

/**
 * Runs one app's update as that app's user, in a process of its own: root under systemd only
 * starts it (setuid) and answers its systemctl calls for the units of its definition. Returns
 * the worker's exit code.
 */
export async function runWorker(o: WorkerRun): Promise<number> {
  const { app, config } = o
  const user = await appUser(app)
  const self = process.getuid?.()
  if (self !== 0 && self !== user.uid) {
    throw new UpdateError('FOREIGN_OWNER', `${app.name} is updated as ${user.name}; this is uid ${self}`, { hint: `Run it as ${user.name} or as root: sudo upkeep${app.name === UPKEEP_APP ? '' : ` --app ${app.name}`} ${o.args[0] ?? ''}` })
  }
  await ensureStateDirAsRoot(config, app, user)
  const script = process.argv[1]!
  const env = workerEnv(app, user, o.copiesDir ? { UPKEEP_UPDATER_COPIES: o.copiesDir } : {})
  const child = spawn(process.execPath, [script, '--app', app.name, 'worker', ...o.args], {
    cwd: path.isAbsolute(app.checkout) ? app.checkout : '/',
    env,
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
    ...(self === 0 ? { uid: user.uid, gid: user.gid } : {}),
  })
  if (config.serviceManager === 'systemd') serveServices(child, createSystemd({ units: app.run.units, sockets: app.run.sockets }), o.log)
  // Ctrl-C and systemd's stop reach the worker directly (same process group, same cgroup); it
  // stops its step and rolls back. The broker only has to outlive it, to answer its calls.
  const ignore = () => {}
  const handlers = (['SIGINT', 'SIGTERM'] as const).map((sig) => [sig, ignore] as const)
  for (const [sig, h] of handlers) process.on(sig, h)
  try {
    return await new Promise<number>((resolve, reject) => {
      child.once('error', reject)
      child.once('exit', (code, signal) => {
        if (signal && o.mirrorSignal) {
          for (const [sig, h] of handlers) process.off(sig, h)
          process.kill(process.pid, signal)
        }
        resolve(code ?? (signal ? 128 : 1))
      })
    })
  } finally {
    for (const [sig, h] of handlers) process.off(sig, h)
  }
}
