import { spawn } from 'node:child_process'
import { lstat } from 'node:fs/promises'
import type { AppDefinition } from '../shared/apps/definition'
import type { Registry } from '../shared/apps/registry'
import type { Config } from '../shared/config'
import { isUpdateError } from '../shared/errors'
import { createAppPaths, createManagerPaths, UPKEEP_APP } from '../shared/paths'
import { DEFAULT_PATH } from '../adapters/clean-env'
import type { RunAs } from '../adapters/exec'
import { isRoot } from '../adapters/fs'
import type { RunCommand } from '../adapters/systemd'
import { appUser, ensureStateDirAsRoot, workerEnv } from '../broker/spawn-worker'
import { failed, pass, skipped, type CheckLine } from './checks'
import { APPS_DROP_IN, UNIT_DROP_IN, UPDATER_UNITS } from './drop-ins'
import { parseEnvironment, parseShowBlocks } from './units'

// `upkeep app check NAME`: root answers what is root's to know (the definition, the user, the
// state directory, systemd's units); the rest runs as the app's user, in a worker process.

/** The order the lines are printed in; ids not listed go last. */
const ORDER = ['definition', 'user', 'checkout', 'owner', 'clean', 'layout', 'remote', 'toolchain', 'units', 'updater-paths', 'state-dir', 'backup-dir', 'data', 'health']
const USER_IDS = ['checkout', 'owner', 'clean', 'layout', 'remote', 'toolchain', 'backup-dir', 'data', 'health']

export interface CheckHost {
  config: Config
  registry: Registry
  /** systemctl (systemd hosts only). */
  run: RunCommand
  /** The user-side checks, run as `user` (a worker), with the PATH builds get. */
  userChecks(app: AppDefinition, user: RunAs, buildPath: string): Promise<CheckLine[]>
}

export interface CheckReport {
  app: string
  checkout?: string
  user?: string
  ok: boolean
  checks: CheckLine[]
}

export async function checkApp(host: CheckHost, name: string): Promise<CheckReport> {
  const { config } = host
  const systemd = config.serviceManager === 'systemd'
  const lines: CheckLine[] = []
  const done = (app?: AppDefinition, user?: RunAs): CheckReport => {
    const rank = (id: string) => (ORDER.includes(id) ? ORDER.indexOf(id) : ORDER.length)
    const checks = lines.sort((a, b) => rank(a.id) - rank(b.id))
    return { app: name, ...(app ? { checkout: app.checkout } : {}), ...(user ? { user: user.name } : {}), ok: checks.every((c) => c.ok), checks }
  }
  const skipRest = (why: string, from: string[]) => {
    for (const id of from) if (!lines.some((l) => l.id === id)) lines.push(skipped(id, why))
  }

  let app: AppDefinition
  try {
    app = await host.registry.get(name)
    lines.push(pass('definition', name === UPKEEP_APP ? "Upkeep's own, from its environment" : `${config.appsDir}/${name}.json is valid`))
  } catch (err) {
    if (!isUpdateError(err)) throw err
    lines.push(failed('definition', err.message, err.hint))
    skipRest('no valid definition', ORDER)
    return done()
  }

  let user: RunAs
  try {
    user = await appUser(app)
  } catch (err) {
    if (!isUpdateError(err)) throw err
    lines.push(failed('user', err.message, err.hint))
    skipRest(`no user to run them as`, ORDER)
    return done(app)
  }
  if (user.uid === 0) {
    lines.push(failed('user', `${app.name} would be updated as root (${app.user ? '"user" in the definition' : `the owner of ${app.checkout}`})`, `Give the checkout to an unprivileged user: useradd --system ${app.name} && chown -R ${app.name}: ${app.checkout}`))
    skipRest('apps are never updated as root', ORDER)
    return done(app, user)
  }
  lines.push(pass('user', `${user.name} (uid ${user.uid})`))

  lines.push(await stateDirCheck(config, app, user))
  const buildPath = app.build.env.PATH ?? (systemd ? await updaterPath(host.run) : undefined) ?? process.env.PATH ?? DEFAULT_PATH
  const self = process.getuid?.()
  if (!isRoot() && self !== user.uid) {
    skipRest(`run it as root or as ${user.name}`, USER_IDS)
  } else {
    lines.push(...(await host.userChecks(app, user, buildPath)))
  }
  if (systemd) {
    lines.push(await unitsCheck(host.run, app))
    if (app.name !== UPKEEP_APP) lines.push(await updaterPathsCheck(host.run, config, app))
  }
  return done(app, user)
}

/** The app's state directory, made (owned by its user) when it is missing, as an update would. */
async function stateDirCheck(config: Config, app: AppDefinition, user: RunAs): Promise<CheckLine> {
  const dir = createAppPaths(app, createManagerPaths(config)).stateDir
  try {
    const before = await lstat(dir).catch(() => undefined)
    await ensureStateDirAsRoot(config, app, user)
    const s = await lstat(dir)
    if (!s.isDirectory() || (app.name !== UPKEEP_APP && s.uid !== user.uid)) return failed('state-dir', `${dir} is not a directory of ${user.name}'s`, `chown ${user.name}: ${dir}`)
    return pass('state-dir', `${dir}${before ? '' : ' (made now)'}, ${user.name}'s`)
  } catch (err) {
    if (!isUpdateError(err)) return failed('state-dir', `${dir}: ${(err as Error).message}`, `Run the check as root: it makes ${dir}, owned by ${user.name}`)
    return failed('state-dir', err.message, err.hint)
  }
}

/** The PATH upkeep-updater.service gives the updates (its Environment=PATH=), when it is installed. */
async function updaterPath(run: RunCommand): Promise<string | undefined> {
  const r = await run('systemctl', ['show', '-p', 'Environment', '--value', UPDATER_UNITS[0]], { timeoutMs: 30_000 }).catch(() => undefined)
  return r?.exitCode === 0 ? parseEnvironment(r.stdout.trim()).PATH : undefined
}

async function unitsCheck(run: RunCommand, app: AppDefinition): Promise<CheckLine> {
  const names = [...app.run.units, ...app.run.sockets]
  if (!app.run.units.length) return failed('units', `${app.name} has no systemd units ("run.units" in its definition)`, `Name the unit that runs it: upkeep app add ${app.checkout} --unit myapp.service --yes`)
  const r = await run('systemctl', ['show', '-p', 'Id,LoadState,ActiveState,SubState,DropInPaths', '--', ...names], { timeoutMs: 30_000 })
  if (r.exitCode !== 0) return failed('units', `systemctl show failed: ${(r.stderr || r.stdout).trim()}`, 'Is systemd running? systemctl is-system-running')
  const blocks = parseShowBlocks(r.stdout).map((p) => (k: string) => p.get(k)?.at(-1)?.trim() ?? '')
  const states: string[] = []
  for (const [i, name] of names.entries()) {
    const get = blocks[i]
    const load = get?.('LoadState') ?? 'unknown'
    if (load !== 'loaded') {
      return failed('units', `${name} is not loaded (${load})`, `Install its unit file (e.g. /etc/systemd/system/${name}) and run systemctl daemon-reload, or fix "run.units" in the definition`)
    }
    const ordered = get!('DropInPaths').split(/\s+/).some((p) => p.endsWith(`/${name}.d/${UNIT_DROP_IN}`))
    if (app.name !== UPKEEP_APP && name.endsWith('.service') && !ordered) {
      return failed('units', `${name} does not wait for upkeep-recover.service at boot (no ${name}.d/${UNIT_DROP_IN})`, `upkeep app add ${app.checkout} --yes (writes it), then systemctl daemon-reload`)
    }
    states.push(`${name} ${get!('ActiveState')} (${get!('SubState')})`)
  }
  return pass('units', `loaded: ${states.join(', ')}`)
}

/** The updater units run with ProtectSystem=strict: the app's checkout and data must be in their ReadWritePaths. */
async function updaterPathsCheck(run: RunCommand, config: Config, app: AppDefinition): Promise<CheckLine> {
  const r = await run('systemctl', ['show', '-p', 'Id,LoadState,ReadWritePaths', '--', ...UPDATER_UNITS], { timeoutMs: 30_000 })
  if (r.exitCode !== 0) return failed('updater-paths', `systemctl show failed: ${(r.stderr || r.stdout).trim()}`)
  const needed = [app.checkout, ...app.data.paths, ...(app.data.backupDir ? [app.data.backupDir] : [])]
  for (const props of parseShowBlocks(r.stdout)) {
    const get = (k: string) => props.get(k)?.at(-1)?.trim() ?? ''
    const unit = get('Id')
    if (get('LoadState') !== 'loaded') return failed('updater-paths', `${unit} is not installed: nothing would run the updates`, 'Install Upkeep first: sh install.sh (README "Install on a server")')
    const writable = get('ReadWritePaths').split(/\s+/).map((p) => p.replace(/^[-+]+/, ''))
    const missing = needed.filter((p) => !writable.some((w) => p === w || p.startsWith(w.endsWith('/') ? w : w + '/')))
    if (missing.length) {
      return failed('updater-paths', `${unit} cannot write ${missing.join(', ')} (it runs with ProtectSystem=strict; not in its ReadWritePaths)`, `upkeep app add ${app.checkout} --yes (writes ${unit}.d/${APPS_DROP_IN}), then systemctl daemon-reload`)
    }
  }
  return pass('updater-paths', `${UPDATER_UNITS.join(' and ')} may write ${needed.join(', ')}`)
}

/** Runs `upkeep --app NAME worker check` as the app's user and returns its lines (a broken worker is a failed line). */
export async function userChecksInWorker(config: Config, app: AppDefinition, user: RunAs, buildPath: string): Promise<CheckLine[]> {
  const env = workerEnv(app, user, {
    PATH: buildPath,
    UPKEEP_SERVICE_MANAGER: config.serviceManager,
    UPKEEP_STATE_DIR: config.stateDir,
    UPKEEP_APPS_DIR: config.appsDir,
    APP_DIR: config.appDir,
    DATA_DIR: config.dataDir,
    BACKUP_DIR: config.backupDir,
  })
  const child = spawn(process.execPath, [process.argv[1]!, '--app', app.name, 'worker', 'check'], {
    cwd: '/',
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(isRoot() ? { uid: user.uid, gid: user.gid } : {}),
  })
  let out = ''
  let err = ''
  child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')))
  child.stderr.on('data', (d: Buffer) => (err += d.toString('utf8')))
  const code = await new Promise<number>((resolve) => {
    child.on('error', () => resolve(127))
    child.on('close', (c) => resolve(c ?? 1))
  })
  try {
    const parsed = JSON.parse(out) as { checks?: CheckLine[] }
    if (code === 0 && Array.isArray(parsed.checks)) return parsed.checks
  } catch {
    /* below */
  }
  const tail = (err || out).trim().split('\n').slice(-5).join('\n')
  return [failed('checkout', `the checks run as ${user.name} could not run (exit ${code})${tail ? `: ${tail}` : ''}`, `Run them by hand to see why: sudo -u ${user.name} upkeep --app ${app.name} worker check`)]
}
