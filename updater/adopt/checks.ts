import { access, constants, lstat, mkdir, rm, stat, writeFile } from 'node:fs/promises'
import path from 'node:path'
import type { AppDefinition } from '../shared/apps/definition'
import type { Config } from '../shared/config'
import { isUpdateError } from '../shared/errors'
import { readInstalled } from '../shared/installed'
import { createAppPaths, createManagerPaths, UPKEEP_APP, type AppPaths } from '../shared/paths'
import { DEV_VERSION, versionFromDescribe } from '../shared/version'
import { cleanEnv, DEFAULT_PATH } from '../adapters/clean-env'
import type { RunAs } from '../adapters/exec'
import { readLinkTarget, userById } from '../adapters/fs'
import { createGit, gitMessage, type Git } from '../adapters/git'
import { createHealthProbe, type HealthAnswer, type HealthProbe } from '../adapters/http'
import { describeRunning } from '../run'
import { asUserCommand, ownEntries, verifyCleanWorktree, verifyOwnership } from '../steps/preflight'
import { planBuild } from '../app-config'
import { repoBuildOf } from './inspect'
import { runAsUser } from './run-as'

// The preconditions of an update, run for real: each one a line that passes or says what is
// wrong and the command that fixes it. These are the ones that touch the app's files, so they run
// as the app's user (`upkeep --app NAME worker check`); check-app.ts adds the ones root answers.

/** One precondition's verdict. `id`s are stable (scripts read `--json`): add new ones, never rename. */
export interface CheckLine {
  id: string
  ok: boolean
  message: string
  /** The command (or edit) that fixes a failure. */
  fix?: string
  /** Not run, because something it needs failed first. */
  skipped?: boolean
}

export const pass = (id: string, message: string): CheckLine => ({ id, ok: true, message })
export const failed = (id: string, message: string, fix?: string): CheckLine => ({ id, ok: false, message, ...(fix ? { fix } : {}) })
export const skipped = (id: string, why: string): CheckLine => ({ id, ok: false, skipped: true, message: `not checked: ${why}` })

/** `upkeep app add CHECKOUT …`, the command that rewrites a definition, for fixes. */
function addCommand(app: AppDefinition, options: string): string {
  return app.name === UPKEEP_APP ? `(Upkeep's own definition comes from its environment: see README "Configuration")` : `upkeep app add ${app.checkout} ${options}--yes`
}

export interface UserCheckDeps {
  app: AppDefinition
  config: Config
  /** Who runs the checks (the app's user). */
  user: RunAs
  git: Git
  health: HealthProbe
  /** The PATH builds get. */
  buildPath: string
  /** A file of the checkout at HEAD (`git show HEAD:NAME`), undefined when there is none. */
  readRepoFile(name: string): Promise<string | undefined>
  sleep(ms: number): Promise<void>
  now(): number
}

/** The real deps, for the process that runs as the app's user. */
export async function createUserCheckDeps(app: AppDefinition, config: Config): Promise<UserCheckDeps> {
  const uid = process.getuid?.() ?? 0
  const user = { ...(await userById(uid)), gid: process.getgid?.() ?? uid }
  const env = cleanEnv(user, { extra: app.build.env })
  return {
    app,
    config,
    user,
    git: createGit(app.checkout, { env, ...(app.source.kind === 'git' ? { remote: app.source.remote } : {}) }),
    health: createHealthProbe(app.health),
    buildPath: env.PATH ?? DEFAULT_PATH,
    async readRepoFile(name) {
      const r = await runAsUser(user, 'git', ['-C', app.checkout, 'show', `HEAD:${name}`], { cwd: '/', env, timeoutMs: 30_000 })
      return r.code === 0 ? r.stdout : undefined
    },
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    now: () => Date.now(),
  }
}

/** The checks that read or write the app's files, in order. Run as the app's user. */
export async function userChecks(d: UserCheckDeps): Promise<CheckLine[]> {
  const { app } = d
  const paths = createAppPaths(app, createManagerPaths(d.config))
  const lines: CheckLine[] = []
  const isDir = await stat(app.checkout).then((s) => s.isDirectory(), () => false)
  const isGit = isDir && (await lstat(path.join(app.checkout, '.git')).then(() => true, () => false))
  if (!isDir) lines.push(failed('checkout', `${app.checkout} does not exist or is not a directory`, `Clone the app there (sudo -u ${d.user.name} git clone URL ${app.checkout}), or fix "checkout" in the definition`))
  else if (!isGit) lines.push(failed('checkout', `${app.checkout} is not a git checkout (no .git)`, `Upkeep updates a git checkout: clone the app's repository there (sudo -u ${d.user.name} git clone URL ${app.checkout})`))
  else lines.push(pass('checkout', `${app.checkout} is a git checkout`))
  if (!isGit) {
    for (const id of ['owner', 'clean', 'layout', 'remote']) lines.push(skipped(id, 'no git checkout'))
  } else {
    const skip = ownEntries({ paths })
    lines.push(await verdict('owner', () => verifyOwnership({ paths, user: d.user }, skip), `${app.checkout} and every file in it belong to ${d.user.name}`))
    lines.push(await verdict('clean', () => verifyCleanWorktree({ git: d.git, paths, user: d.user, app }, skip), 'no local changes'))
    lines.push(await layoutCheck(app, paths))
    lines.push(await remoteCheck(d, paths))
  }
  lines.push(await toolchainCheck(d, isGit))
  lines.push(await backupDirCheck(paths.backupDir, d.user))
  lines.push(await dataCheck(app.data.paths, d.user))
  lines.push(await healthCheck(d, await expectedVersion(d, paths), paths.installed))
  return lines
}

async function verdict(id: string, run: () => Promise<void>, ok: string): Promise<CheckLine> {
  try {
    await run()
    return pass(id, ok)
  } catch (err) {
    if (!isUpdateError(err)) return failed(id, err instanceof Error ? err.message : String(err))
    return failed(id, err.message, err.hint)
  }
}

/** Releases layout: `current` must be a symlink into `.upkeep/releases/` (the switch replaces it with one rename). */
async function layoutCheck(app: AppDefinition, paths: AppPaths): Promise<CheckLine> {
  if (app.build.layout === 'in-place') return pass('layout', `in-place: the app runs from ${app.checkout} itself`)
  const s = await lstat(paths.current).catch(() => undefined)
  const target = await readLinkTarget(paths.current)
  const example = `${app.checkout}/.upkeep/releases/vX.Y.Z`
  if (!s) {
    return failed('layout', `releases layout, but ${paths.current} does not exist: nothing runs from a release`, `Put the running build in ${example} and link it: ln -s .upkeep/releases/vX.Y.Z ${paths.current} (or add the app with --layout in-place)`)
  }
  if (!s.isSymbolicLink()) {
    return failed('layout', `releases layout, but ${paths.current} is not a symbolic link (the switch to a new release replaces the link)`, `mv ${paths.current} ${example} && ln -s .upkeep/releases/vX.Y.Z ${paths.current}`)
  }
  if (!target || path.dirname(target) !== paths.releases || !(await stat(target).then((t) => t.isDirectory(), () => false))) {
    return failed('layout', `${paths.current} points to ${target ?? '?'}, not to a release in ${paths.releases}`, `Move the running build to ${example} and point current there: ln -sfn .upkeep/releases/vX.Y.Z ${paths.current}`)
  }
  return pass('layout', `releases: current → ${path.relative(app.checkout, target)}`)
}

async function remoteCheck(d: UserCheckDeps, paths: AppPaths): Promise<CheckLine> {
  const remote = d.app.source.kind === 'git' ? d.app.source.remote : 'origin'
  const ls = asUserCommand(`git -C ${paths.appDir} ls-remote --tags ${remote}`, d.user)
  const url = await d.git.remoteUrl()
  if (!url) return failed('remote', `the checkout has no remote "${remote}"`, asUserCommand(`git -C ${paths.appDir} remote add ${remote} URL`, d.user))
  let tags: string[]
  try {
    tags = [...(await d.git.remoteTags()).keys()].filter((t) => /^v\d+\.\d+\.\d+/.test(t))
  } catch (err) {
    return failed('remote', `cannot list the tags of ${remote} (${url}): ${gitMessage(err)}`, `Check the network and the remote's address (credentials, a deploy key): ${ls}`)
  }
  if (!tags.length) return failed('remote', `${remote} (${url}) has no release tags (vX.Y.Z)`, 'Tag a release where the app is developed: git tag -a v1.0.0 -m v1.0.0 && git push origin v1.0.0')
  return pass('remote', `${remote} (${url}) answers with ${tags.length} release tag${tags.length === 1 ? '' : 's'}`)
}

/** Where `program` is found the way execve(2) finds it: a path as is (relative to `cwd`), a name on `PATH`. */
export async function findProgram(program: string, searchPath: string, cwd: string): Promise<string | undefined> {
  const candidates = program.includes('/') ? [path.resolve(cwd, program)] : searchPath.split(':').filter(Boolean).map((dir) => path.join(dir, program))
  for (const c of candidates) {
    const ok = await stat(c).then((s) => s.isFile(), () => false)
    if (ok && (await access(c, constants.X_OK).then(() => true, () => false))) return c
  }
  return undefined
}

/** The commands an update would run: the definition's, else the release's upkeep.json (here: HEAD's), else Upkeep's own default. */
async function buildCommands(d: UserCheckDeps, isGit: boolean): Promise<{ commands: string[][]; from: string }> {
  if (d.app.build.commands) return { commands: d.app.build.commands, from: 'the definition' }
  const text = isGit ? await d.readRepoFile('upkeep.json') : undefined
  const repo = text ? repoBuildOf(text) : undefined
  const commands = planBuild(d.app, repo?.commands ? { buildCommands: repo.commands } : {}).commands
  return { commands, from: repo?.commands ? "the checkout's upkeep.json" : 'Upkeep’s own build' }
}

async function toolchainCheck(d: UserCheckDeps, isGit: boolean): Promise<CheckLine> {
  const { commands, from } = await buildCommands(d, isGit)
  if (!commands.length) return pass('toolchain', 'no build commands to run')
  const programs = [...new Set(commands.map((c) => c[0]!))]
  const missing: string[] = []
  for (const p of programs) if (!(await findProgram(p, d.buildPath, d.app.checkout))) missing.push(p)
  if (missing.length) {
    const cmd = commands.find((c) => c[0] === missing[0])!
    const them = missing.length === 1 ? 'it' : 'them'
    return failed(
      'toolchain',
      `${missing.map((m) => `"${m}"`).join(', ')} (build command \`${cmd.join(' ')}\` from ${from}) ${missing.length === 1 ? 'is' : 'are'} not on the PATH builds get: ${d.buildPath}`,
      `Install ${them} system-wide (a package, or into /usr/local/bin), or name ${them} by absolute path in the build command (${addCommand(d.app, `--build-command '${JSON.stringify([`/path/to/${cmd[0]}`, ...cmd.slice(1)])}' `)})`,
    )
  }
  return pass('toolchain', `${programs.join(', ')} found on the PATH builds get (build commands from ${from})`)
}

async function backupDirCheck(dir: string, user: RunAs): Promise<CheckLine> {
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 })
    const probe = path.join(dir, `.upkeep-check-${process.pid}`)
    await writeFile(probe, '')
    await rm(probe)
    return pass('backup-dir', `${dir} is writable by ${user.name}`)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message
    return failed('backup-dir', `backups cannot be written to ${dir} by ${user.name} (${code})`, `install -d -o ${user.name} -m 700 ${dir} (or set "data.backupDir" in the definition to a directory of ${user.name}'s)`)
  }
}

/** Each data path a directory the user can read (the backup reads it as that user); a missing one is an app that has not written data yet. */
async function dataCheck(paths: string[], user: RunAs): Promise<CheckLine> {
  if (!paths.length) return pass('data', 'no data paths: nothing is backed up before an update')
  for (const p of paths) {
    const s = await stat(p).catch(() => undefined)
    if (s && !s.isDirectory()) return failed('data', `the data path ${p} is not a directory`, 'Name the directory that holds it in "data.paths" (upkeep app add CHECKOUT --data DIR --yes)')
    if (s && !(await access(p, constants.R_OK | constants.X_OK).then(() => true, () => false))) {
      return failed('data', `${user.name} cannot read the data path ${p} (the backup runs as ${user.name})`, `chown -R ${user.name}: ${p}`)
    }
  }
  return pass('data', `${paths.join(', ')}: directories ${user.name} can read (or not made yet)`)
}

/** The version running now and where that is known from: what the updater recorded, else what it would find itself. */
export interface ExpectedVersion {
  version: string
  from: string
}

async function expectedVersion(d: UserCheckDeps, paths: AppPaths): Promise<ExpectedVersion | undefined> {
  const installed = await readInstalled(paths.installed)
  if (installed) return { version: installed.version, from: 'update-installed.json records' }
  try {
    const running = await describeRunning({ paths, git: d.git, app: d.app })
    if (running.version === DEV_VERSION) return undefined
    const from = running.release ? `${paths.current} → ${path.relative(paths.appDir, running.release)}` : `git describe of ${paths.appDir}`
    return { version: running.version, from: `${from} says` }
  } catch {
    return undefined
  }
}

/** Health: polled until it answers with the expected status (at most the definition's timeout, 10 s at most), then judged once. */
export async function healthCheck(d: Pick<UserCheckDeps, 'app' | 'health' | 'sleep' | 'now'>, expected: ExpectedVersion | undefined, installedFile: string): Promise<CheckLine> {
  const { app } = d
  const { url, expectStatus } = app.health
  const deadline = d.now() + Math.min(app.health.timeoutMs, 10_000)
  let last: HealthAnswer | undefined
  for (;;) {
    last = await d.health()
    if ((last && last.status === expectStatus) || d.now() >= deadline) break
    await d.sleep(app.health.intervalMs)
  }
  const units = app.run.units.join(' ')
  if (!last) {
    return failed('health', `no answer from ${url}`, units ? `Is the app running? systemctl status ${units} (journalctl -u ${app.run.units[0]} -e); or fix the URL: ${addCommand(app, '--health-url URL ')}` : `Is the app running? Or fix the URL: ${addCommand(app, '--health-url URL ')}`)
  }
  if (last.status !== expectStatus) {
    return failed('health', `${url} answers HTTP ${last.status}, not ${expectStatus}`, `Check the URL (${addCommand(app, '--health-url URL ')}) or "health.expectStatus" in the definition`)
  }
  if (app.health.version.kind === 'none') return pass('health', `${url} answers HTTP ${last.status} (the definition recognises no version)`)
  if (!last.version) {
    return failed(
      'health',
      `${url} answers HTTP ${last.status} but reports no version: ${last.versionProblem ?? 'none found'}`,
      `Point "health.version" at where the app reports its version: ${addCommand(app, '--health-version json:/POINTER ')} (or regex:RE, header:NAME; none when it reports none)`,
    )
  }
  if (!expected) {
    return failed('health', `${url} answers HTTP ${last.status} with version ${last.version}, but which version runs is not known (no ${installedFile}, no release tag at HEAD)`, `Record it: ${addCommand(app, '')}`)
  }
  const want = versionFromDescribe(expected.version)
  const got = versionFromDescribe(last.version)
  if (got !== want) {
    const fix =
      app.name === UPKEEP_APP
        ? `Something else answers there, or Upkeep runs other code than ${want}: check HOST and PORT (systemctl show -p Environment upkeep.service), then systemctl restart upkeep.service`
        : `If ${got} is what runs, record it: ${addCommand(app, '')}; else restart the app so it runs ${want}${units ? `: systemctl restart ${units}` : ''}`
    return failed('health', `${url} answers HTTP ${last.status} with version ${got}, not ${want}, the running version ${expected.from}`, fix)
  }
  return pass('health', `${url} answers HTTP ${last.status} with version ${got}, the running version`)
}
