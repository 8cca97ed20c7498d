import { spawn } from 'node:child_process'
import { chown, copyFile, mkdir, rename, stat } from 'node:fs/promises'
import path from 'node:path'
import { createInterface } from 'node:readline/promises'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { ConfigError } from './shared/config'
import { isUpdateError, UpdateError } from './shared/errors'
import { fileHistory, readHistory, type HistoryEntry } from './shared/history'
import { fileJournal, isUnfinished, readJournal } from './shared/journal'
import { createLogger, type Logger } from './shared/log'
import { createPaths, type Paths } from './shared/paths'
import { readReleaseCache } from './shared/release-cache'
import { newUpdateId, takeUpdateRequest } from './shared/request'
import { loadConfigOrExit } from './shared/runtime'
import { fileStatus, type StatusEvent, type StatusWriter } from './shared/status'
import { compareVersions, currentBuild, isBuilt, isReleaseTag, tagForVersion } from './shared/version'
import { createClock } from './adapters/clock'
import { createExec } from './adapters/exec'
import { isRoot, mkdirOwned, ownerOf } from './adapters/fs'
import { createGit } from './adapters/git'
import { createHealthProbe } from './adapters/http'
import { createUpdateLock, type UpdateLock } from './adapters/lock'
import type { ServiceManager } from './adapters/service-manager'
import { createServiceManager } from './adapters/services'
import { recordUnstarted, recover, runUpdate, type RunDeps, type RunResult } from './run'
import { parseTunables } from './tunables'

// The updater's commands (`upkeep update|rollback|history|recover|apply-request`): argv in,
// real dependencies built here and nowhere else, exit code out.

/** Exit codes: 0 complete (or nothing to do), 1 failed, 2 usage, 3 rolled back. */
const EXIT = { ok: 0, failed: 1, usage: 2, rolledBack: 3 } as const

interface Options {
  json: boolean
  /** Boot mode: the server is not up; never touch services. */
  boot?: boolean
}

function print(line: string) {
  process.stdout.write(line + '\n')
}

/** Prints the status events as a person reads them, and passes them on to the status file. */
function consoleStatus(inner: StatusWriter, enabled: boolean): StatusWriter {
  // On a terminal the running step shows as "… build" and is overwritten by its result.
  const tty = process.stdout.isTTY === true
  const show = (e: StatusEvent) => {
    if (!enabled) return
    const secs = (ms: number) => `${(ms / 1000).toFixed(1)}s`
    const done = (text: string) => print(tty ? `\r\x1b[2K${text}` : text)
    switch (e.type) {
      case 'update-started':
        return print(`${e.kind === 'rollback' ? 'Rolling back' : 'Updating'} ${e.from.version} → ${e.to.version} (${e.updateId})`)
      case 'step-started':
        if (tty) process.stdout.write(`  … ${e.step}`)
        return
      case 'step-finished':
        return done(`  ✓ ${e.step} ${secs(e.durationMs)}`)
      case 'step-failed':
        return done(`  ✗ ${e.step} ${secs(e.durationMs)}: ${e.error.code}: ${e.error.message}${e.error.hint ? `\n    hint: ${e.error.hint}` : ''}`)
      case 'log':
        if (e.level !== 'info') done(`    ${e.level}: ${e.message}`)
        return
      case 'finished': {
        const why = e.error ? `${e.error.code}: ${headline(e.error.message)}` : ''
        if (e.status === 'complete') return print(`Done in ${secs(e.durationMs)}.`)
        if (e.status === 'rolled_back') return print(`Rolled back to the previous version (${why}).`)
        return print(`Failed: ${why}`)
      }
    }
  }
  return {
    begin: (id) => inner.begin(id),
    resume: (id) => inner.resume(id),
    async emit(body) {
      const e = await inner.emit(body)
      show(e)
      return e
    },
  }
}

/** Services are never touched in boot mode: a stand-in that says so if anything tries. */
const NO_SERVICES: ServiceManager = {
  kind: 'process',
  restart: () => Promise.reject(new Error('boot mode does not restart services')),
  start: () => Promise.reject(new Error('boot mode does not start services')),
  stop: () => Promise.resolve(),
  state: () => Promise.resolve({ active: 'unknown', subState: 'boot', mainPid: undefined, restarts: 0, exitStatus: undefined }),
  recentLogs: () => Promise.resolve([]),
}

/** A service manager that cannot be built fails the update where it is first used (restart), not at start. */
function serviceManagerOrDeferredError(make: () => ServiceManager): ServiceManager {
  try {
    return make()
  } catch (err) {
    const reject = () => Promise.reject(err)
    return { ...NO_SERVICES, restart: reject, start: reject, stop: reject }
  }
}

async function buildDeps(opts: Options & { signal?: AbortSignal; progress: boolean }): Promise<{ deps: RunDeps; paths: Paths; log: Logger }> {
  const config = loadConfigOrExit(process.env, import.meta.url)
  let tunables
  try {
    tunables = parseTunables(process.env)
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    for (const p of err.problems) process.stderr.write(`upkeep: invalid ${p.variable}: ${p.message}\n`)
    process.exit(EXIT.usage)
  }
  const paths = createPaths(config)
  // JSON lines on stdout for journald (apply-request). A person at the CLI reads the progress
  // lines instead, so logs go to stderr and only when LOG_LEVEL asks for them.
  const forPerson = opts.progress || opts.json
  const level = forPerson && !process.env.LOG_LEVEL?.trim() ? 'fatal' : config.logLevel
  const log = createLogger({ level, name: 'upkeep-updater', fd: forPerson ? 2 : 1 })
  const owner = await ownerOf(config.appDir).catch((err: Error) => {
    throw new UpdateError('NOT_FOUND', `APP_DIR ${config.appDir} does not exist: ${err.message}`, { hint: 'Set APP_DIR to the app’s git checkout.' })
  })
  const runAs = isRoot() && owner.uid !== 0 ? owner : undefined
  if (runAs) {
    // git and npm need a writable HOME of their own: an account like nobody has none, and a
    // service account whose home is the checkout itself would get ~/.npm written into it.
    const insideCheckout = runAs.home === paths.appDir || runAs.home.startsWith(paths.appDir + path.sep)
    const usable = runAs.home && !insideCheckout && (await stat(runAs.home).then((s) => s.isDirectory() && s.uid === runAs.uid, () => false))
    if (!usable) {
      runAs.home = path.join(paths.upkeepDir, 'home')
      await mkdirOwned(paths.upkeepDir, runAs)
      await mkdirOwned(runAs.home, runAs)
    }
  }
  await mkdir(paths.dataDir, { recursive: true })
  const killAt = isBuilt() ? undefined : process.env.UPKEEP_TEST_KILL_AT
  const deps: RunDeps = {
    config,
    tunables,
    paths,
    exec: createExec(runAs ? { runAs } : {}),
    git: createGit(config.appDir, runAs ? { runAs } : {}),
    services: opts.boot ? NO_SERVICES : serviceManagerOrDeferredError(() => createServiceManager(config, paths, log, runAs)),
    health: createHealthProbe(config.host, config.port),
    clock: createClock(),
    log,
    journal: fileJournal(paths.journal),
    status: consoleStatus(fileStatus(paths.status), opts.progress && !opts.json),
    history: fileHistory(paths.history),
    lock: createUpdateLock(paths, { log, staleAfterMs: tunables.staleAfterMs }),
    owner,
    ...(runAs ? { runAs } : {}),
    ...(opts.signal ? { signal: opts.signal } : {}),
    // Test-only (never in a built bundle): SIGKILL ourselves right after journaling "step:phase".
    ...(killAt ? { onJournal: (step: string, phase: string) => (`${step}:${phase}` === killAt ? process.kill(process.pid, 'SIGKILL') : undefined) } : {}),
  }
  return { deps, paths, log }
}

/**
 * Built, the updater copies its bundle to .upkeep/updater/ and runs the copy, so switching
 * `current` or pruning the old release cannot change the code mid-update. From the sources it runs as is.
 * Returns the copy's exit code, or undefined when this process is to do the work itself.
 */
async function runFromCopy(paths: Paths, argv: string[]): Promise<number | undefined> {
  if (!isBuilt() || process.env.UPKEEP_RUNNING_COPY === '1') return undefined
  const self = fileURLToPath(import.meta.url)
  if (self.startsWith(paths.updaterRunDir + path.sep)) return undefined
  // Run as root (the systemd units), the copy still belongs to the checkout's owner: nothing in the checkout is root's.
  const owner = isRoot() ? await ownerOf(paths.appDir).catch(() => undefined) : undefined
  await mkdirOwned(paths.upkeepDir, owner)
  await mkdirOwned(paths.updaterRunDir, owner)
  const copy = (version: string) => path.join(paths.updaterRunDir, `upkeep-${version.replace(/[^0-9A-Za-z.+-]/g, '_')}.mjs`)
  // An unfinished update is settled by the updater that started it (its copy is still here): the
  // release it switched to may be the broken one, its updater included.
  const journal = argv[0] === 'recover' || argv[0] === 'apply-request' ? await readJournal(paths.journal) : undefined
  const starter = isUnfinished(journal) ? copy(journal.from.version) : undefined
  let run = copy(currentBuild().version)
  if (starter && starter !== run && (await stat(starter).then((s) => s.isFile(), () => false))) run = starter
  else {
    await copyFile(self, `${run}.tmp`)
    if (owner) await chown(`${run}.tmp`, owner.uid, owner.gid)
    await rename(`${run}.tmp`, run)
  }
  const child = spawn(process.execPath, [run, ...argv], { stdio: 'inherit', env: { ...process.env, UPKEEP_RUNNING_COPY: '1' } })
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => child.kill(sig))
  return new Promise((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1))))
}

/** First SIGINT/SIGTERM: stop the step and fail or roll back cleanly. Second: leave at once (recovery takes over). */
function interruptSignal(): AbortSignal {
  const ac = new AbortController()
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      if (ac.signal.aborted) process.exit(130)
      process.stderr.write(`upkeep: ${sig}: stopping the update (again to quit at once; \`upkeep recover\` then finishes it)\n`)
      ac.abort()
    })
  }
  return ac.signal
}

function exitFor(result: RunResult): number {
  return result.outcome === 'complete' ? EXIT.ok : result.outcome === 'rolled_back' ? EXIT.rolledBack : EXIT.failed
}

function fail(err: unknown, json: boolean): number {
  if (isUpdateError(err)) {
    if (json) print(JSON.stringify({ error: err.toJSON() }))
    else process.stderr.write(`upkeep: ${err.code}: ${err.message}${err.hint ? `\n  hint: ${err.hint}` : ''}\n`)
    return EXIT.failed
  }
  throw err
}

/** The newest release: the server's cached check, else the highest stable tag on origin. */
async function latestTag(deps: RunDeps): Promise<string> {
  const cache = await readReleaseCache(deps.paths.releaseCache)
  if (cache?.latest?.tag && isReleaseTag(cache.latest.tag)) return cache.latest.tag
  const tags = [...(await deps.git.remoteTags()).keys()].filter((t) => isReleaseTag(t) && !t.includes('-'))
  const latest = tags.sort((a, b) => compareVersions(b, a))[0]
  if (!latest) throw new UpdateError('NO_RELEASE', 'origin has no release tags', { hint: 'Name the version: upkeep update v1.2.3' })
  return latest
}

async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stdout })
  try {
    return /^y(es)?$/i.test((await rl.question(`${question} [y/N] `)).trim())
  } finally {
    rl.close()
  }
}

export async function updateCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { yes: { type: 'boolean', short: 'y' }, json: { type: 'boolean' }, 'no-backup': { type: 'boolean' }, force: { type: 'boolean' } },
    allowPositionals: true,
  })
  const json = values.json === true
  if (positionals.length > 1) {
    process.stderr.write('upkeep update: one version at most\n')
    return EXIT.usage
  }
  const signal = interruptSignal()
  try {
    const { deps, paths } = await buildDeps({ json, signal, progress: true })
    const viaCopy = await runFromCopy(paths, ['update', ...args])
    if (viaCopy !== undefined) return viaCopy
    let tag: string
    try {
      tag = positionals[0] ? tagForVersion(positionals[0]) : await latestTag(deps)
    } catch (err) {
      if (err instanceof TypeError) throw new UpdateError('BAD_VERSION', err.message)
      throw err
    }
    if (process.stdin.isTTY && !values.yes && !json && !(await confirm(`Update ${path.basename(paths.appDir)} to ${tag}?`))) return EXIT.failed
    const result = await runUpdate(deps, { updateId: newUpdateId(), kind: 'update', trigger: 'cli', tag, options: { backup: !values['no-backup'], force: values.force === true } })
    if (json) print(JSON.stringify({ ...result.entry, ...(result.recovered?.entry ? { recovered: result.recovered.entry } : {}) }))
    return exitFor(result)
  } catch (err) {
    return fail(err, json)
  }
}

export async function rollbackCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { yes: { type: 'boolean', short: 'y' }, json: { type: 'boolean' }, 'no-backup': { type: 'boolean' } } })
  const json = values.json === true
  const signal = interruptSignal()
  try {
    const { deps, paths } = await buildDeps({ json, signal, progress: true })
    const viaCopy = await runFromCopy(paths, ['rollback', ...args])
    if (viaCopy !== undefined) return viaCopy
    if (process.stdin.isTTY && !values.yes && !json && !(await confirm('Roll back to the previous build (server.bak)?'))) return EXIT.failed
    const result = await runUpdate(deps, { updateId: newUpdateId(), kind: 'rollback', trigger: 'cli', options: { backup: !values['no-backup'], force: true } })
    if (json) print(JSON.stringify(result.entry))
    return exitFor(result)
  } catch (err) {
    return fail(err, json)
  }
}

export async function recoverCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { boot: { type: 'boolean' }, json: { type: 'boolean' } } })
  const json = values.json === true
  const boot = values.boot === true
  try {
    const { deps, paths } = await buildDeps({ json, boot, progress: true })
    const viaCopy = await runFromCopy(paths, ['recover', ...args])
    if (viaCopy !== undefined) return viaCopy
    const result = await recover(deps, boot ? 'boot' : 'live')
    if (json) print(JSON.stringify(result))
    else if (result.action === 'nothing') print('Nothing to recover.')
    else print(`Recovered update ${result.updateId}: ${result.action} → ${result.entry?.status}`)
    // Recovery worked unless it gave up or the old version would not come back.
    return result.action === 'give-up' || result.entry?.error?.code === 'ROLLBACK_FAILED' ? EXIT.failed : EXIT.ok
  } catch (err) {
    return fail(err, json)
  }
}

/**
 * Every apply-request run lasts at least this long, so a server flooding requests gets one
 * handled per interval and never trips the units' limits (upkeep-updater.path: 8 starts in
 * 10 s; upkeep-updater.service: 15 in 30 s), which would leave the path unit failed for good.
 */
export const REQUEST_INTERVAL_MS = 2500

export async function applyRequestCommand(args: string[]): Promise<number> {
  parseArgs({ args, options: {} })
  const started = Date.now()
  const signal = interruptSignal()
  const { deps, paths, log } = await buildDeps({ json: false, signal, progress: false })
  const viaCopy = await runFromCopy(paths, ['apply-request', ...args])
  if (viaCopy !== undefined) return viaCopy
  try {
    return await applyRequest(deps, paths, log)
  } finally {
    await new Promise((r) => setTimeout(r, started + REQUEST_INTERVAL_MS - Date.now()))
  }
}

async function applyRequest(deps: RunDeps, paths: Paths, log: Logger): Promise<number> {
  // The lock first: a request that arrives while an update runs waits for it (the path unit
  // starts us again) instead of being taken and lost to LOCKED.
  let held
  try {
    held = await deps.lock.acquire()
  } catch (err) {
    if (!isUpdateError(err) || err.code !== 'LOCKED') throw err
    log.info({ reason: err.message }, 'update lock is held; the request waits')
    return EXIT.ok
  }
  // runUpdate and recordUnstarted take the lock again: hand them the one held here.
  const lock: UpdateLock = { acquire: async () => ({ tookOverStale: held.tookOverStale, release: async () => {} }) }
  try {
    return await applyTakenRequest({ ...deps, lock }, paths, log)
  } finally {
    await held.release()
  }
}

async function applyTakenRequest(deps: RunDeps, paths: Paths, log: Logger): Promise<number> {
  const taken = await takeUpdateRequest(paths.request)
  if (!taken) {
    // Restart= after the updater was killed lands here: settle the update it left unfinished.
    const r = await recover(deps, 'live')
    log.info({ file: paths.request, recovered: r.action, updateId: r.updateId, status: r.entry?.status }, r.action === 'nothing' ? 'no update request' : 'recovered an unfinished update')
    return r.action === 'give-up' || r.entry?.error?.code === 'ROLLBACK_FAILED' ? EXIT.failed : EXIT.ok
  }
  if (!taken.ok) {
    // Data from an internet-facing process: rejected whole, never passed on.
    log.error({ err: taken.error.message }, 'rejected update request')
    return EXIT.failed
  }
  const { request } = taken
  log.info({ updateId: request.updateId, version: request.version }, 'taking update request')
  const plan = { updateId: request.updateId, kind: 'update' as const, trigger: 'request' as const, ...(request.version ? { tag: request.version } : {}), options: { backup: request.backup, force: false } }
  try {
    const tag = request.version ?? (await latestTag(deps))
    const result = await runUpdate(deps, { ...plan, tag })
    return exitFor(result)
  } catch (err) {
    if (!isUpdateError(err)) throw err
    log.error({ updateId: request.updateId, code: err.code, hint: err.hint }, err.message)
    // The UI waits for this id: say how it ended.
    await recordUnstarted(deps, plan, err.toJSON()).catch((e: Error) => log.error({ err: e }, 'could not record the failed request'))
    return EXIT.failed
  }
}

export async function historyCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { json: { type: 'boolean' }, limit: { type: 'string', short: 'n' } } })
  const config = loadConfigOrExit(process.env, import.meta.url)
  const entries = (await readHistory(createPaths(config).history)).reverse()
  const limit = values.limit ? Number(values.limit) : 20
  if (!Number.isInteger(limit) || limit < 1) {
    process.stderr.write('upkeep history: --limit must be a positive number\n')
    return EXIT.usage
  }
  const shown = entries.slice(0, limit)
  if (values.json) {
    print(JSON.stringify(shown))
    return EXIT.ok
  }
  if (!shown.length) {
    print('No updates yet.')
    return EXIT.ok
  }
  print(formatHistory(shown))
  return EXIT.ok
}

/** The first line of an error message, without the "; output:" that introduces a command's output. */
function headline(message: string): string {
  return message.split('\n')[0]!.replace(/;? output:$/, '')
}

export function formatHistory(entries: HistoryEntry[]): string {
  const rows = entries.map((e) => [
    e.startedAt.replace('T', ' ').slice(0, 19),
    e.kind === 'rollback' ? `${e.from.version} ⟲ ${e.to.version}` : `${e.from.version} → ${e.to.version}`,
    e.status + (e.recovered ? ' (recovered)' : ''),
    `${(e.durationMs / 1000).toFixed(1)}s`,
    e.error ? `${e.error.code}: ${headline(e.error.message)}` : '',
  ])
  const head = ['started (UTC)', 'version', 'status', 'took', 'error']
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd()
  return [line(head), ...rows.map(line)].join('\n')
}
