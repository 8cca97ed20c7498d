import { spawn } from 'node:child_process'
import { stat } from 'node:fs/promises'
import { createRegistry, type Registry } from '../shared/apps/registry'
import type { Config } from '../shared/config'
import { UpdateError } from '../shared/errors'
import { readHistory, type HistoryEntry } from '../shared/history'
import { installedFromText } from '../shared/installed-from'
import { createLogger, type Logger } from '../shared/log'
import { createAppPaths, createManagerPaths } from '../shared/paths'
import type { UpdateRequest } from '../shared/request'
import { loadConfigOrExit } from '../shared/runtime'
import { isReleaseTag } from '../shared/version'
import { isRoot, ownerOf } from '../adapters/fs'
import { runWorker } from '../broker/spawn-worker'
import { watchRequests } from '../broker/request-watch'
import { parseTakenRequests, takeRequests, type TakenAppRequest } from '../broker/take-requests'
import { headline, print } from '../console-status'
import { currentCopiesDir, dispatch, EXIT, fail, loadCommandContext, parseOptions, runFromCopy, UsageError } from './common'
import { workerMain } from './worker'

// The update commands people and units run: `upkeep [--app NAME] update|rollback|recover|history`
// and `upkeep apply-request` (upkeep-updater.service). Each hands the work to the app's worker.

export async function updateCommand(appName: string | undefined, args: string[]): Promise<number> {
  // Checked here too, so a usage error never starts a worker.
  const { values, positionals } = parseOptions(args, { yes: { type: 'boolean', short: 'y' }, json: { type: 'boolean' }, 'no-backup': { type: 'boolean' }, force: { type: 'boolean' }, 'from-source': { type: 'boolean' } }, true)
  if (positionals.length > 1) throw new UsageError('one version at most')
  const version = positionals[0]
  // The worker's own rule (a semver release tag), so a bad version never reaches it.
  if (version !== undefined && !isReleaseTag(version.startsWith('v') ? version : `v${version}`)) throw new UsageError(`"${version.slice(0, 40)}" is not a version; versions look like 1.2.3 or v1.2.3`)
  return withApp(appName, ['update', ...args], values.json === true)
}

export async function rollbackCommand(appName: string | undefined, args: string[]): Promise<number> {
  const { values } = parseOptions(args, { yes: { type: 'boolean', short: 'y' }, json: { type: 'boolean' }, 'no-backup': { type: 'boolean' } })
  return withApp(appName, ['rollback', ...args], values.json === true)
}

async function withApp(appName: string | undefined, argv: string[], json: boolean): Promise<number> {
  try {
    const ctx = await loadCommandContext(appName, { quiet: true })
    const viaCopy = await runFromCopy(ctx.config, [...(appName ? ['--app', appName] : []), ...argv])
    if (viaCopy !== undefined) return viaCopy
    return await dispatch(ctx, argv, (a) => workerMain(ctx, a))
  } catch (err) {
    return fail(err, json)
  }
}

/** `upkeep recover [--boot] [--json]`: every app, or the one `--app` names. */
export async function recoverCommand(appName: string | undefined, args: string[]): Promise<number> {
  const { values } = parseOptions(args, { boot: { type: 'boolean' }, json: { type: 'boolean' } })
  const json = values.json === true
  try {
    const config = loadConfigOrExit(process.env, import.meta.url)
    const viaCopy = await runFromCopy(config, [...(appName ? ['--app', appName] : []), 'recover', ...args])
    if (viaCopy !== undefined) return viaCopy
    const registry = createRegistry(config)
    const log = createLogger({ level: json ? 'fatal' : config.logLevel, name: 'upkeep-updater', fd: 2 })
    const names = appName ? [appName] : (await registry.list()).filter((e) => e.ok).map((e) => e.name)
    const workerArgs = ['recover', ...(values.boot ? ['--boot'] : []), ...(json ? ['--json'] : [])]
    return await recoverApps(config, registry, names, workerArgs, log)
  } catch (err) {
    return fail(err, json)
  }
}

async function recoverApps(config: Config, registry: Registry, names: string[], workerArgs: string[], log: Logger): Promise<number> {
  let code: number = EXIT.ok
  for (const name of names) {
    try {
      const app = await registry.get(name)
      const ctx = { config, registry, app, log }
      const r = await dispatch(ctx, workerArgs, (a) => workerMain(ctx, a))
      if (r !== EXIT.ok) code = EXIT.failed
    } catch (err) {
      // One app's broken definition must not keep the others from recovering.
      log.error({ app: name, err: err instanceof Error ? err.message : String(err) }, 'cannot recover app')
      code = EXIT.failed
    }
  }
  return code
}

export async function historyCommand(appName: string | undefined, args: string[]): Promise<number> {
  const { values } = parseOptions(args, { json: { type: 'boolean' }, limit: { type: 'string', short: 'n' } })
  const limit = values.limit === undefined ? 20 : Number(values.limit)
  if (!Number.isInteger(limit) || limit < 1) throw new UsageError('-n/--limit must be a positive number')
  try {
    const ctx = await loadCommandContext(appName, { quiet: true })
    const entries = (await readHistory(createAppPaths(ctx.app, createManagerPaths(ctx.config)).history)).reverse()
    const shown = entries.slice(0, limit)
    if (values.json) print(JSON.stringify(shown))
    else print(shown.length ? formatHistory(shown) : 'No updates yet.')
    return EXIT.ok
  } catch (err) {
    return fail(err, values.json === true)
  }
}

/**
 * Every apply-request run lasts at least this long, so a server flooding requests gets one
 * handled per interval and never trips the units' limits (upkeep-updater.path: 8 starts in
 * 10 s; upkeep-updater.service: 15 in 30 s), which would leave the path unit failed for good.
 */
export const REQUEST_INTERVAL_MS = 2500

/** While updates run, requests are looked for again at least this often (inotify wakes it sooner). */
const REQUEST_POLL_MS = 5000
const MIN_TAKE_INTERVAL_MS = 1000

/**
 * The requests, taken by the owner of the data dir (the server's user): root never opens a path
 * the server can write. Run as that user already (or without systemd), taken in this process.
 */
async function takeAsDataOwner(config: Config, registry: Registry, skip: ReadonlySet<string>): Promise<TakenAppRequest[]> {
  const owner = await ownerOf(config.dataDir).catch(() => undefined)
  if (!isRoot() || !owner || owner.uid === 0) return takeRequests(config, registry, skip)
  const child = spawn(process.execPath, [process.argv[1]!, 'take-requests', ...[...skip].flatMap((app) => ['--skip', app])], {
    env: { ...process.env, HOME: owner.home || '/', USER: owner.name },
    uid: owner.uid,
    gid: owner.gid,
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  let out = ''
  child.stdout!.on('data', (d: Buffer) => (out += d.toString('utf8')))
  const code = await new Promise<number>((resolve) => child.on('exit', (c) => resolve(c ?? 1)))
  if (code !== 0) throw new UpdateError('INTERNAL', `taking the update requests as ${owner.name} failed (exit ${code})`)
  return parseTakenRequests(out)
}

/** `upkeep take-requests` (internal): prints the taken requests as JSON, for apply-request run as root. */
export async function takeRequestsCommand(args: string[]): Promise<number> {
  const { values } = parseOptions(args, { skip: { type: 'string', multiple: true } })
  const config = loadConfigOrExit(process.env, import.meta.url)
  print(JSON.stringify(await takeRequests(config, createRegistry(config), new Set(values.skip ?? []))))
  return EXIT.ok
}

export async function applyRequestCommand(args: string[]): Promise<number> {
  parseOptions(args, {})
  const started = Date.now()
  const config = loadConfigOrExit(process.env, import.meta.url)
  const viaCopy = await runFromCopy(config, ['apply-request', ...args])
  if (viaCopy !== undefined) return viaCopy
  const registry = createRegistry(config)
  const log = createLogger({ level: config.logLevel, name: 'upkeep-updater' })
  try {
    return await applyRequests(config, registry, log)
  } finally {
    await new Promise((r) => setTimeout(r, started + REQUEST_INTERVAL_MS - Date.now()))
  }
}

async function applyRequests(config: Config, registry: Registry, log: Logger): Promise<number> {
  let handled = 0
  let code: number = EXIT.ok
  // The worker running for each app: that app's next request waits for it (it could not take the lock).
  const running = new Map<string, Promise<void>>()
  const manager = createManagerPaths(config)
  const requests = watchRequests(manager.dataDir, manager.requestsDir)
  let lastTake = 0
  try {
    // Each app's update starts as soon as its request is taken, while others run: one that
    // arrives meanwhile wakes this loop; one for an app still updating waits for that update.
    for (;;) {
      // A server flooding request files wakes this often at most (each take spawns a process).
      await new Promise((r) => setTimeout(r, lastTake + MIN_TAKE_INTERVAL_MS - Date.now()))
      lastTake = Date.now()
      const taken = await takeAsDataOwner(config, registry, new Set(running.keys()))
      handled += taken.length
      for (const t of taken) {
        // Data from an internet-facing process: rejected whole, never passed on.
        if (!t.ok) {
          log.error({ app: t.app, err: t.error.message }, 'rejected update request')
          code = EXIT.failed
          continue
        }
        const app = t.app
        running.set(
          app,
          startRequested(config, registry, app, t.request, log).then((c) => {
            if (c !== EXIT.ok) code = EXIT.failed
            running.delete(app)
          }),
        )
      }
      if (!running.size) break
      await Promise.race([...running.values(), requests.next(REQUEST_POLL_MS)])
    }
  } finally {
    requests.close()
  }
  if (handled) return code
  log.info({ dir: config.dataDir }, 'no update request')
  // Started again (Restart=) after the updater was killed, or by hand: settle unfinished updates.
  const names = (await registry.list()).filter((e) => e.ok).map((e) => e.name)
  const withState = []
  for (const name of names) {
    const app = await registry.get(name)
    if (await stat(createAppPaths(app, manager).stateDir).then(() => true, () => false)) withState.push(name)
  }
  return recoverApps(config, registry, withState, ['recover', '--quiet'], log)
}

async function startRequested(config: Config, registry: Registry, name: string, request: UpdateRequest, log: Logger): Promise<number> {
  log.info({ app: name, updateId: request.updateId, version: request.version, trigger: request.trigger ?? 'request' }, 'taking update request')
  try {
    const app = await registry.get(name)
    const args = ['update', ...(request.version ? [request.version] : []), '--request-id', request.updateId, ...(request.trigger === 'auto' ? ['--trigger', 'auto'] : []), ...(request.backup ? [] : ['--no-backup'])]
    return await runWorker({ config, app, args, log, copiesDir: currentCopiesDir(config) })
  } catch (err) {
    log.error({ app: name, err: err instanceof Error ? err.message : String(err) }, 'cannot start the update')
    return EXIT.failed
  }
}

export function formatHistory(entries: HistoryEntry[]): string {
  const rows = entries.map((e) => [
    e.startedAt.replace('T', ' ').slice(0, 19),
    e.kind === 'rollback' ? `${e.from.version} ⟲ ${e.to.version}` : `${e.from.version} → ${e.to.version}`,
    e.status + (e.recovered ? ' (recovered)' : ''),
    `${(e.durationMs / 1000).toFixed(1)}s`,
    installedFromText(e.to.installedFrom) || '—',
    e.error ? `${e.error.code}: ${headline(e.error.message)}` : '',
  ])
  const head = ['started (UTC)', 'version', 'status', 'took', 'installed from', 'error']
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd()
  return [line(head), ...rows.map(line)].join('\n')
}
