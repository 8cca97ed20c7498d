import { spawn } from 'node:child_process'
import { stat } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { UpdateError, isUpdateError } from '../shared/errors'
import { isUnfinished, readJournal, type Journal } from '../shared/journal'
import { readReleaseCache } from '../shared/release-cache'
import { newUpdateId, isUpdateId } from '../shared/request'
import { compareVersions, currentBuild, isBuilt, isReleaseTag, tagForVersion } from '../shared/version'
import { createAppPaths, createManagerPaths, UPKEEP_APP } from '../shared/paths'
import { headline, print } from '../console-status'
import { recordUnstarted, recover, runUpdate, type RunDeps, type RunResult } from '../run'
import { createWorkerDeps } from '../worker/deps'
import { confirm, copyPath, EXIT, fail, interruptSignal, parseOptions, UsageError, type CommandContext } from './common'

// The part of every update that runs as the app's own user: `upkeep --app NAME worker …`, started
// by the broker (root under systemd, or the CLI), or called in-process when no user switch is needed.

export function exitFor(result: RunResult): number {
  return result.outcome === 'complete' ? EXIT.ok : result.outcome === 'rolled_back' ? EXIT.rolledBack : EXIT.failed
}

/** The newest release: the server's cached check, else the highest stable tag on the remote. */
export async function latestTag(deps: RunDeps): Promise<string> {
  const cache = await readReleaseCache(deps.paths.releaseCache)
  if (cache?.latest?.tag && isReleaseTag(cache.latest.tag)) return cache.latest.tag
  const remote = await deps.git.remoteTags().catch((err: unknown) => {
    throw new UpdateError('FETCH_FAILED', `cannot list the release tags of the remote: ${headline(err instanceof Error ? err.message : String(err))}`, {
      hint: 'Name the version (upkeep update v1.2.3), or check the checkout\'s remote: git remote -v',
      cause: err,
    })
  })
  const tags = [...remote.keys()].filter((t) => isReleaseTag(t) && !t.includes('-'))
  const latest = tags.sort((a, b) => compareVersions(b, a))[0]
  if (!latest) throw new UpdateError('NO_RELEASE', 'the remote has no release tags', { hint: 'Name the version: upkeep update v1.2.3' })
  return latest
}

/** The updater version whose copy started an unfinished update (Upkeep's own journals once named it only by `from`). */
function starterVersion(j: Journal, app: string): string | undefined {
  return j.updaterVersion ?? (app === UPKEEP_APP ? j.from.version : undefined)
}

/**
 * An unfinished update is settled by the updater copy that started it, not by this one: after
 * Upkeep switched to a release, that release's updater may be the broken part. Returns the copy's
 * exit code, or undefined when this process is the right one. Messages from and to the broker
 * are passed through.
 */
async function handOverToStarter(ctx: CommandContext, argv: string[]): Promise<number | undefined> {
  const dir = process.env.UPKEEP_UPDATER_COPIES
  if (!isBuilt() || !dir || process.env.UPKEEP_STARTER_COPY === '1') return undefined
  const paths = createAppPaths(ctx.app, createManagerPaths(ctx.config))
  const j = await readJournal(paths.journal)
  if (!isUnfinished(j)) return undefined
  const version = starterVersion(j, ctx.app.name)
  if (!version || version === currentBuild().version) return undefined
  const copy = copyPath(dir, version)
  if (copy === fileURLToPath(import.meta.url) || !(await stat(copy).then((s) => s.isFile(), () => false))) return undefined
  const child = spawn(process.execPath, [copy, '--app', ctx.app.name, 'worker', ...argv], {
    stdio: ['inherit', 'inherit', 'inherit', ...(process.send ? (['ipc'] as const) : [])],
    env: { ...process.env, UPKEEP_STARTER_COPY: '1' },
  })
  if (process.send) {
    child.on('message', (m) => process.send?.(m as never))
    process.on('message', (m) => child.connected && child.send(m as never))
  }
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => {})
  return new Promise((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1))))
}

/** `worker update [vX.Y.Z] [--yes] [--json] [--no-backup] [--force] [--from-source] [--request-id ID --trigger request|auto]` */
async function workerUpdate(ctx: CommandContext, args: string[]): Promise<number> {
  const { values, positionals } = parseOptions(
    args,
    {
      yes: { type: 'boolean', short: 'y' },
      json: { type: 'boolean' },
      'no-backup': { type: 'boolean' },
      force: { type: 'boolean' },
      'from-source': { type: 'boolean' },
      'request-id': { type: 'string' },
      trigger: { type: 'string' },
    },
    true,
  )
  if (positionals.length > 1) throw new UsageError('one version at most')
  let tag: string | undefined
  if (positionals[0]) {
    try {
      tag = tagForVersion(positionals[0])
    } catch (err) {
      throw new UsageError((err as Error).message)
    }
  }
  const requestId = values['request-id']
  if (requestId !== undefined && !isUpdateId(requestId)) throw new UsageError('--request-id is not an update id')
  if (values.trigger !== undefined && values.trigger !== 'auto' && values.trigger !== 'request') throw new UsageError('--trigger is "request" or "auto"')
  if (values.trigger !== undefined && !requestId) throw new UsageError('--trigger needs --request-id (it names who asked for a request)')
  const trigger: 'auto' | 'request' | 'cli' = values.trigger === 'auto' ? 'auto' : requestId ? 'request' : 'cli'
  const json = values.json === true
  const signal = interruptSignal()
  const { deps } = await createWorkerDeps({ config: ctx.config, app: ctx.app, signal, progress: trigger === 'cli', json })
  const plan = { updateId: requestId ?? newUpdateId(), kind: 'update' as const, trigger, ...(tag ? { tag } : {}), options: { backup: !values['no-backup'], force: values.force === true, ...(values['from-source'] ? { fromSource: true } : {}) } }
  try {
    const target = tag ?? (await latestTag(deps))
    if (trigger === 'cli' && process.stdin.isTTY && !values.yes && !json && !(await confirm(`Update ${ctx.app.name} to ${target}?`))) return EXIT.failed
    // A request was taken from the server's queue: it waits for a running update instead of being lost.
    const lock = requestId ? waitingLock(deps) : deps.lock
    const result = await runUpdate({ ...deps, lock }, { ...plan, tag: target })
    if (json) print(JSON.stringify({ ...result.entry, ...(result.recovered?.entry ? { recovered: result.recovered.entry } : {}) }))
    return exitFor(result)
  } catch (err) {
    if (requestId && isUpdateError(err)) {
      // The UI waits for this id: say how it ended.
      deps.log.error({ updateId: requestId, code: err.code, hint: err.hint }, err.message)
      await recordUnstarted(deps, plan, err.toJSON()).catch((e: Error) => deps.log.error({ err: e }, 'could not record the failed request'))
      return EXIT.failed
    }
    return fail(err, json)
  }
}

/** The app's lock, waited for (a request behind a running update runs after it). */
function waitingLock(deps: RunDeps): RunDeps['lock'] {
  return {
    async acquire() {
      for (;;) {
        try {
          return await deps.lock.acquire()
        } catch (err) {
          if (!isUpdateError(err) || err.code !== 'LOCKED') throw err
          await new Promise((r) => setTimeout(r, 1000))
        }
      }
    },
  }
}

async function workerRollback(ctx: CommandContext, args: string[]): Promise<number> {
  const { values } = parseOptions(args, { yes: { type: 'boolean', short: 'y' }, json: { type: 'boolean' }, 'no-backup': { type: 'boolean' } })
  const json = values.json === true
  const signal = interruptSignal()
  const { deps } = await createWorkerDeps({ config: ctx.config, app: ctx.app, signal, progress: true, json })
  try {
    if (process.stdin.isTTY && !values.yes && !json && !(await confirm(`Roll ${ctx.app.name} back to its previous build (server.bak)?`))) return EXIT.failed
    const result = await runUpdate(deps, { updateId: newUpdateId(), kind: 'rollback', trigger: 'cli', options: { backup: !values['no-backup'], force: true } })
    if (json) print(JSON.stringify(result.entry))
    return exitFor(result)
  } catch (err) {
    return fail(err, json)
  }
}

async function workerRecover(ctx: CommandContext, args: string[]): Promise<number> {
  const { values } = parseOptions(args, { boot: { type: 'boolean' }, json: { type: 'boolean' }, quiet: { type: 'boolean' } })
  const json = values.json === true
  const boot = values.boot === true
  try {
    // Under a unit (at boot, or after the updater was killed) logs go to the journal as JSON lines.
    const { deps } = await createWorkerDeps({ config: ctx.config, app: ctx.app, boot, progress: !values.quiet && !boot, json })
    const result = await recover(deps, boot ? 'boot' : 'live')
    if (result.action !== 'nothing') deps.log.info({ recovered: result.action, updateId: result.updateId, status: result.entry?.status }, 'recovered an unfinished update')
    if (json) print(JSON.stringify({ app: ctx.app.name, ...result }))
    else if (result.action !== 'nothing') print(`Recovered update ${result.updateId} of ${ctx.app.name}: ${result.action} → ${result.entry?.status}`)
    else if (!values.quiet) print(`${ctx.app.name}: nothing to recover.`)
    else deps.log.debug('nothing to recover')
    // Recovery worked unless it gave up or the old version would not come back.
    return result.action === 'give-up' || result.entry?.error?.code === 'ROLLBACK_FAILED' ? EXIT.failed : EXIT.ok
  } catch (err) {
    return fail(err, json)
  }
}

/** `worker check`: `upkeep app check`'s checks that touch the app's files, as its user; JSON on stdout. */
async function workerCheck(ctx: CommandContext, args: string[]): Promise<number> {
  parseOptions(args, {})
  return (await import('./app')).workerCheck(ctx)
}

const WORKER_COMMANDS: Record<string, (ctx: CommandContext, args: string[]) => Promise<number>> = {
  update: workerUpdate,
  rollback: workerRollback,
  recover: workerRecover,
  check: workerCheck,
}

/** `upkeep --app NAME worker COMMAND …`: runs as the app's user. */
export async function workerMain(ctx: CommandContext, argv: string[]): Promise<number> {
  const [name, ...args] = argv
  const command = name ? WORKER_COMMANDS[name] : undefined
  if (!command) throw new UsageError(`worker: unknown command "${name ?? ''}" (${Object.keys(WORKER_COMMANDS).join(', ')})`)
  // A check changes nothing and settles nothing: this copy runs it, whichever started an update.
  if (name === 'check') return command(ctx, args)
  const handed = await handOverToStarter(ctx, argv)
  if (handed !== undefined) return handed
  return command(ctx, args)
}

