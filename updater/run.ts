import { readFile, rename, rm } from 'node:fs/promises'
import path from 'node:path'
import { UpdateError } from './shared/errors'
import type { HistoryEntry } from './shared/history'
import type { InstalledFrom } from './shared/installed-from'
import { isUnfinished, type ErrorInfo, type Journal, type JournalStep, type Outcome, type StepName } from './shared/journal'
import { isProcessAlive } from './shared/pidfile'
import { processStartTime } from './shared/pidfile'
import { currentBuild, DEV_VERSION, isReleaseTag, versionFromDescribe } from './shared/version'
import { readInstalled, writeInstalled } from './shared/installed'
import { killGroup } from './adapters/exec'
import { readLinkTarget } from './adapters/fs'
import { pruneBackups } from './backup-archive'
import type { UpdateLock } from './adapters/lock'
import { readReleaseManifest } from './adapters/release-manifest'
import { errorInfo, type Deps, type Step, type StepContext } from './context'
import { journalProblem } from './journal-check'
import { diedIn, planRecovery, type RecoveryAction } from './recover'
import { backup } from './steps/backup'
import { build, cleanStaging } from './steps/build'
import { commit } from './steps/commit'
import { fetch } from './steps/fetch'
import { health } from './steps/health'
import { preflight } from './steps/preflight'
import { restart } from './steps/restart'
import { rollBack, type RecoveryMode } from './steps/rollback'
import { soak } from './steps/soak'
import { switchStep } from './steps/switch'

export const UPDATE_STEPS: Step[] = [preflight, backup, fetch, build, switchStep, restart, health, soak, commit]
/** `upkeep rollback`: back to server.bak, which is already built. */
export const ROLLBACK_STEPS: Step[] = [preflight, backup, switchStep, restart, health, commit]

export interface UpdatePlan {
  updateId: string
  kind: 'update' | 'rollback'
  trigger: 'cli' | 'request' | 'auto'
  /** Target tag for `update`; ignored for `rollback` (server.bak names it). */
  tag?: string
  options: { backup: boolean; force: boolean; fromSource?: boolean }
}

export interface RunResult {
  outcome: Outcome
  entry: HistoryEntry
  /** The update that an earlier updater left unfinished and this run recovered first. */
  recovered?: RecoveryResult
}

export interface RecoveryResult {
  action: RecoveryAction
  updateId?: string
  entry?: HistoryEntry
}

export type RunDeps = Deps & { lock: UpdateLock; watchdogMs?: number }

/**
 * What runs now. `releases` layout: the live build (`current`) and its manifest. `in-place`: the
 * checkout's commit, named by what the updater last installed there or by `git describe`.
 */
export async function describeRunning(deps: Pick<Deps, 'paths' | 'git' | 'app'>): Promise<Journal['from']> {
  let commit: string
  try {
    commit = await deps.git.headCommit()
  } catch (err) {
    throw new UpdateError('NOT_FOUND', `${deps.paths.appDir} is not a git checkout (${(err as Error).message.split('\n')[0]})`, {
      hint: deps.app.name === 'upkeep' ? 'Set APP_DIR to the app’s git checkout.' : `Fix "checkout" in the definition of ${deps.app.name}.`,
      cause: err,
    })
  }
  const branch = await deps.git.currentBranch()
  const base = { commit, ...(branch ? { branch } : {}) }
  if (deps.app.build.layout === 'in-place') {
    const installed = await readInstalled(deps.paths.installed)
    if (installed?.commit === commit) return { version: installed.version, ...(installed.tag ? { tag: installed.tag } : {}), ...base, ...(installed.installedFrom ? { installedFrom: installed.installedFrom } : {}) }
    const described = await deps.git.describe()
    return { version: described ? versionFromDescribe(described) : DEV_VERSION, ...(described && isReleaseTag(described) ? { tag: described } : {}), ...base }
  }
  const release = await readLinkTarget(deps.paths.current)
  const bak = await readLinkTarget(deps.paths.serverBak)
  const manifest = release ? await readReleaseManifest(release) : undefined
  let version = manifest?.version
  if (!version && release) {
    try {
      version = (JSON.parse(await readFile(path.join(release, 'build-info.json'), 'utf8')) as { version?: string }).version
    } catch {
      const name = path.basename(release)
      if (isReleaseTag(name)) version = versionFromDescribe(name)
    }
  }
  return {
    version: version ?? DEV_VERSION,
    ...(manifest?.tag ? { tag: manifest.tag } : {}),
    ...base,
    ...(release ? { release } : {}),
    ...(bak ? { bak } : {}),
    ...(manifest?.installedFrom ? { installedFrom: manifest.installedFrom } : {}),
  }
}

/**
 * What a release directory holds: its manifest, or for one made by hand (an app adopted with the
 * release an operator built) its name when that is a release tag, and the tag's commit.
 */
async function releaseOf(deps: Pick<Deps, 'git'>, dir: string): Promise<{ tag: string; version: string; commit: string; installedFrom?: InstalledFrom } | undefined> {
  const manifest = await readReleaseManifest(dir)
  if (manifest) return manifest
  const tag = path.basename(dir).replace(/\+[0-9a-f]{8}$/, '')
  if (!isReleaseTag(tag)) return undefined
  const commit = await deps.git.tagCommit(tag)
  return commit ? { tag, version: versionFromDescribe(tag), commit } : undefined
}

/** The steps of an update: without a soak when the app's definition sets none. */
export function stepsOf(kind: Journal['kind'], app: Pick<Deps['app'], 'health'>): Step[] {
  if (kind !== 'update') return ROLLBACK_STEPS
  return app.health.soakMs > 0 ? UPDATE_STEPS : UPDATE_STEPS.filter((s) => s !== soak)
}

/** Runs one update (or `upkeep rollback`) under the lock, first recovering an update left unfinished. */
export async function runUpdate(deps: RunDeps, plan: UpdatePlan, steps?: Step[]): Promise<RunResult> {
  const held = await deps.lock.acquire()
  try {
    let recovered: RecoveryResult | undefined
    const prior = await trustedJournal(deps)
    if (isUnfinished(prior)) recovered = await recoverJournal(deps, prior, 'live', held.tookOverStale)
    const from = await describeRunning(deps)
    let to: Journal['to']
    if (plan.kind === 'update') {
      if (!plan.tag) throw new UpdateError('BAD_VERSION', 'no version to update to', { hint: 'upkeep update v1.2.3' })
      to = { tag: plan.tag, version: versionFromDescribe(plan.tag) }
    } else {
      if (deps.app.build.layout === 'in-place') {
        throw new UpdateError('NOT_FOUND', `${deps.app.name} runs from its checkout: there is no previous build to switch back to`, {
          hint: `Install the previous release again: upkeep --app ${deps.app.name} update vX.Y.Z --force`,
        })
      }
      const bak = from.bak ? await releaseOf(deps, from.bak) : undefined
      if (!from.bak || !bak) {
        throw new UpdateError('NOT_FOUND', 'there is no previous build (server.bak) to roll back to', { hint: 'A rollback target exists after the first update made by upkeep.' })
      }
      to = { tag: bak.tag, version: bak.version, commit: bak.commit, release: from.bak, ...(bak.installedFrom ? { installedFrom: bak.installedFrom } : {}) }
    }
    const now = deps.clock.now().toISOString()
    const j: Journal = {
      schema: 1,
      updateId: plan.updateId,
      app: deps.app.name,
      updaterVersion: currentBuild().version,
      kind: plan.kind,
      trigger: plan.trigger,
      pid: process.pid,
      ...(processStartTime(process.pid) !== undefined ? { pidStart: processStartTime(process.pid)! } : {}),
      startedAt: now,
      updatedAt: now,
      from,
      to,
      options: plan.options,
      state: 'running',
      steps: [],
      recoveries: 0,
    }
    const list = steps ?? stepsOf(plan.kind, deps.app)
    await deps.status.begin(plan.updateId)
    await deps.journal.write(j)
    await deps.status.emit({ type: 'update-started', kind: plan.kind, from: { version: from.version, ...(from.tag ? { tag: from.tag } : {}) }, to: { version: to.version, tag: to.tag }, steps: list.map((s) => s.name), trigger: plan.trigger })
    deps.log.info({ updateId: j.updateId, from: from.version, to: to.tag }, 'starting update')
    const result = await runSteps(deps, j, list)
    return { ...result, ...(recovered ? { recovered } : {}) }
  } finally {
    await held.release()
  }
}

interface Session {
  ctx: StepContext
  /** Aborts the running step (interrupt or stale). */
  abort(reason: UpdateError): void
  close(): void
}

/** The step context around a journal: saving bumps `updatedAt`, a watchdog marks the update stale. */
function openSession(deps: RunDeps, j: Journal, external?: AbortSignal): Session {
  const ac = new AbortController()
  const abort = (reason: UpdateError) => {
    if (!ac.signal.aborted) ac.abort(reason)
  }
  const onExternal = () => abort(new UpdateError('INTERRUPTED', 'the updater was asked to stop (SIGTERM or Ctrl-C)'))
  if (external?.aborted) onExternal()
  external?.addEventListener('abort', onExternal, { once: true })
  let lastSave = 0
  const save = async () => {
    j.updatedAt = deps.clock.now().toISOString()
    lastSave = Date.now()
    await deps.journal.write(j)
  }
  const watchdog = setInterval(() => {
    if (deps.clock.now().getTime() - Date.parse(j.updatedAt) > deps.tunables.staleAfterMs) {
      abort(new UpdateError('STALE', `no progress for ${Math.round(deps.tunables.staleAfterMs / 60_000)} minutes`, { hint: 'A build command hung; see the live log for the last thing it printed.' }))
    }
  }, deps.watchdogMs ?? Math.min(60_000, deps.tunables.staleAfterMs / 10))
  watchdog.unref()
  const ctx: StepContext = {
    ...deps,
    j,
    signal: ac.signal,
    save,
    async touch() {
      if (Date.now() - lastSave > 60_000) await save()
    },
    async emit(body) {
      await deps.status.emit(body).catch((err: Error) => deps.log.warn({ err }, 'could not write the status file'))
    },
  }
  return {
    ctx,
    abort,
    close() {
      clearInterval(watchdog)
      external?.removeEventListener('abort', onExternal)
    },
  }
}

async function journalStep(ctx: StepContext, rec: JournalStep): Promise<void> {
  await ctx.save()
  ctx.onJournal?.(rec.name, rec.phase)
}

type StepOutcome<T> = { ok: true; value: T; rec: JournalStep } | { ok: false; info: ErrorInfo; err: unknown; rec: JournalStep }

/**
 * One step's bookkeeping, the same for every step and for the rollback: journaled as started
 * before it runs, then as finished or failed (with the error), each also a status event.
 */
async function journaled<T>(ctx: StepContext, name: StepName, run: () => Promise<T>, failure: (err: unknown) => ErrorInfo = (err) => errorInfo(err, name)): Promise<StepOutcome<T>> {
  const { clock } = ctx
  const rec: JournalStep = { name, phase: 'started', startedAt: clock.now().toISOString() }
  ctx.j.steps.push(rec)
  await journalStep(ctx, rec)
  await ctx.emit({ type: 'step-started', step: name })
  const t0 = clock.now().getTime()
  const done = (fields: Partial<JournalStep>) => Object.assign(rec, { finishedAt: clock.now().toISOString(), durationMs: clock.now().getTime() - t0, ...fields })
  try {
    const value = await run()
    done({ phase: 'finished', ...(value && typeof value === 'object' ? { detail: value as Record<string, unknown> } : {}) })
    await journalStep(ctx, rec)
    await ctx.emit({ type: 'step-finished', step: name, durationMs: rec.durationMs! })
    return { ok: true, value, rec }
  } catch (err) {
    const info = failure(err)
    done({ phase: 'failed', error: info })
    return { ok: false, info, err, rec }
  }
}

async function runSteps(deps: RunDeps, j: Journal, steps: Step[]): Promise<RunResult> {
  const session = openSession(deps, j, deps.signal)
  const { ctx } = session
  const switchAt = steps.findIndex((s) => s.name === 'switch')
  try {
    for (const [i, step] of steps.entries()) {
      const log = deps.log.child({ updateId: j.updateId, step: step.name })
      log.info('starting step')
      const r = await journaled(
        ctx,
        step.name,
        async () => {
          if (ctx.signal.aborted) throw ctx.signal.reason
          return await step.run(ctx)
        },
        (err) => errorInfo(ctx.signal.aborted ? ctx.signal.reason : err, step.name),
      )
      if (r.ok) {
        log.info({ durationMs: r.rec.durationMs }, 'finished step')
        continue
      }
      j.error = r.info
      log.error({ code: r.info.code, err: r.err }, 'step failed')
      const beforeSwitch = switchAt < 0 || i < switchAt
      if (!beforeSwitch) j.state = 'rolling_back'
      await journalStep(ctx, r.rec)
      await ctx.emit({ type: 'step-failed', step: step.name, durationMs: r.rec.durationMs!, error: r.info })
      if (beforeSwitch) {
        await cleanUpBeforeSwitch(ctx)
        return await finish(ctx, 'failed', r.info)
      }
      session.close()
      return await rollBackAndFinish(deps, j, 'live', r.info)
    }
    return await finish(ctx, 'complete')
  } finally {
    session.close()
  }
}

/** After a failure before the switch: nothing live changed; remove what the update built. */
async function cleanUpBeforeSwitch(ctx: StepContext): Promise<void> {
  const { j } = ctx
  if (j.child && isProcessAlive(j.child.pid, j.child.start)) killGroup(j.child.pid, 'SIGKILL')
  // Leftovers of an interrupted backup (temp archive, SQLite copies); retention applies as usual.
  await pruneBackups(ctx.paths.backupDir, ctx.app.name, ctx.app.data.keep).catch(() => [])
  if (j.kind !== 'update') return
  await cleanStaging(ctx, j.to.tag).catch((err: Error) => ctx.log.warn({ err }, 'could not clean staging'))
  const live = [await readLinkTarget(ctx.paths.current), await readLinkTarget(ctx.paths.serverBak)]
  if (j.to.release && !live.includes(j.to.release)) await rm(j.to.release, { recursive: true, force: true })
}

async function rollBackAndFinish(deps: RunDeps, j: Journal, mode: RecoveryMode, cause: ErrorInfo, recovered = false): Promise<RunResult> {
  // A fresh session: the interrupt that failed the update must not cut its rollback short.
  const session = openSession(deps, j)
  const { ctx } = session
  try {
    j.state = 'rolling_back'
    deps.log.warn({ updateId: j.updateId, code: cause.code, mode }, 'rolling back')
    const r = await journaled(
      ctx,
      'rollback',
      () => rollBack(ctx, mode),
      (err) => {
        const info = errorInfo(err, 'rollback')
        return info.code === 'ROLLBACK_FAILED' ? info : { ...info, code: 'ROLLBACK_FAILED', message: `rollback failed: ${info.message}` }
      },
    )
    if (r.ok) {
      r.rec.detail = r.value.detail
      await journalStep(ctx, r.rec)
      return await finish(ctx, r.value.outcome, cause, recovered)
    }
    await journalStep(ctx, r.rec)
    await ctx.emit({ type: 'step-failed', step: 'rollback', durationMs: r.rec.durationMs!, error: r.info })
    deps.log.error({ err: r.err }, 'rollback failed')
    return await finish(ctx, 'failed', r.info, recovered)
  } finally {
    session.close()
  }
}

function historyEntry(j: Journal, outcome: Outcome, error: ErrorInfo | undefined, recovered: boolean, finishedAt: Date): HistoryEntry {
  return {
    id: j.updateId,
    ...(j.app ? { app: j.app } : {}),
    kind: j.kind,
    trigger: j.trigger,
    from: { version: j.from.version, ...(j.from.tag ? { tag: j.from.tag } : {}), ...(j.from.commit ? { commit: j.from.commit } : {}), ...(j.from.installedFrom ? { installedFrom: j.from.installedFrom } : {}) },
    to: { version: j.to.version, tag: j.to.tag, ...(j.to.commit ? { commit: j.to.commit } : {}), ...(j.to.installedFrom ? { installedFrom: j.to.installedFrom } : {}) },
    status: outcome,
    startedAt: j.startedAt,
    finishedAt: finishedAt.toISOString(),
    durationMs: finishedAt.getTime() - Date.parse(j.startedAt),
    steps: j.steps.map((s) => ({ name: s.name, status: s.phase, ...(s.durationMs !== undefined ? { durationMs: s.durationMs } : {}) })),
    ...(error ? { error } : {}),
    ...(j.backup ? { backupPath: j.backup.path } : {}),
    ...(j.dataAside ? { dataAside: j.dataAside } : {}),
    ...(recovered ? { recovered: true } : {}),
  }
}

/** Records the end: history first, then what runs now, then the journal is closed (recovery re-records idempotently). */
async function finish(ctx: StepContext, outcome: Outcome, error?: ErrorInfo, recovered = false): Promise<RunResult> {
  const { j } = ctx
  const at = ctx.clock.now()
  const entry = historyEntry(j, outcome, error, recovered, at)
  await ctx.history.append(entry)
  const running = outcome === 'complete' ? j.to : j.from
  await writeInstalled(ctx.paths.installed, {
    version: running.version,
    ...(running.tag ? { tag: running.tag } : {}),
    ...(running.commit ? { commit: running.commit } : {}),
    ...(running.installedFrom ? { installedFrom: running.installedFrom } : {}),
    at: at.toISOString(),
  }).catch((err: Error) =>
    ctx.log.warn({ err }, 'could not record the installed version'),
  )
  Object.assign(j, { state: 'done', outcome, finishedAt: at.toISOString() })
  if (error) j.error = error
  delete j.child
  await ctx.save()
  await ctx.emit({ type: 'finished', status: outcome, durationMs: entry.durationMs, ...(error ? { error } : {}), ...(j.backup ? { backupPath: j.backup.path } : {}) })
  ctx.log[outcome === 'complete' ? 'info' : 'warn']({ updateId: j.updateId, outcome, code: error?.code }, 'update ended')
  return { outcome, entry }
}

/**
 * Ends an update a dead (or hung) updater left behind, as recover.ts's table says. `boot` mode
 * runs before the server starts: files only, no restart, no health check.
 */
export async function recoverJournal(deps: RunDeps, j: Journal, mode: RecoveryMode, stale = false): Promise<RecoveryResult> {
  const action = planRecovery(j)
  if (action === 'nothing') return { action }
  const where = diedIn(j)
  j.recoveries++
  await deps.status.resume(j.updateId)
  const session = openSession(deps, j)
  const { ctx } = session
  try {
    await ctx.save()
    const whereText = where ? `${where.step} (${where.phase})` : 'its start'
    await ctx.emit({ type: 'log', level: 'warn', message: `recovering update ${j.updateId}: the updater stopped in ${whereText}; action: ${action}` })
    deps.log.warn({ updateId: j.updateId, diedIn: where, action, mode }, 'recovering an unfinished update')
    if (j.child && isProcessAlive(j.child.pid, j.child.start)) killGroup(j.child.pid, 'SIGKILL')
    const cause: ErrorInfo =
      j.error ??
      (stale
        ? { code: 'STALE', message: `the update made no progress for ${Math.round(deps.tunables.staleAfterMs / 60_000)} minutes (in ${whereText}) and was stopped` }
        : { code: 'INTERRUPTED', message: `the updater stopped in ${whereText}`, ...(where ? { step: where.step } : {}) })
    let entry: HistoryEntry
    switch (action) {
      case 'clean-up':
        await cleanUpBeforeSwitch(ctx)
        entry = (await finish(ctx, 'failed', cause, true)).entry
        break
      case 'roll-back':
        session.close()
        entry = (await rollBackAndFinish(deps, j, mode, cause, true)).entry
        break
      case 'finish-commit': {
        await commit.run(ctx)
        const rec = j.steps[j.steps.length - 1]
        if (rec?.name === 'commit' && rec.phase === 'started') Object.assign(rec, { phase: 'finished', finishedAt: deps.clock.now().toISOString() })
        entry = (await finish(ctx, 'complete', undefined, true)).entry
        break
      }
      case 'give-up': {
        const hint = [
          `Recovery of this update failed ${j.recoveries - 1} times; fix it by hand:`,
          j.from.release ? `ln -sfn ${path.relative(deps.paths.appDir, j.from.release)} ${deps.paths.current}` : undefined,
          j.movedAside?.length ? `move ${j.movedAside.join(', ')} back from ${deps.paths.previousOutputs} into ${deps.paths.appDir}` : undefined,
          j.from.commit ? `git -C ${deps.paths.appDir} checkout ${j.from.branch ?? j.from.commit}` : undefined,
          j.backup ? `data backup: ${j.backup.path} (tar xzf it)` : undefined,
          `then start ${deps.app.name} again.`,
        ]
          .filter(Boolean)
          .join(' ')
        entry = (await finish(ctx, 'failed', { code: 'RECOVERY_GAVE_UP', message: `gave up recovering update ${j.updateId} (it stopped in ${whereText})`, hint }, true)).entry
        break
      }
    }
    return { action, updateId: j.updateId, entry }
  } finally {
    session.close()
  }
}

/**
 * A requested update that could not even start (no release to update to, not a git checkout…):
 * recorded under its id, so the UI that asked for it sees it end. Needs the lock (one writer).
 */
export async function recordUnstarted(deps: RunDeps, plan: UpdatePlan, error: ErrorInfo): Promise<HistoryEntry> {
  const held = await deps.lock.acquire()
  try {
    const at = deps.clock.now().toISOString()
    const to = plan.tag ? { tag: plan.tag, version: versionFromDescribe(plan.tag) } : { tag: '', version: '' }
    const entry: HistoryEntry = { id: plan.updateId, app: deps.app.name, kind: plan.kind, trigger: plan.trigger, from: { version: '' }, to, status: 'failed', startedAt: at, finishedAt: at, durationMs: 0, steps: [], error }
    await deps.status.begin(plan.updateId)
    await deps.status.emit({ type: 'update-started', kind: plan.kind, from: { version: '' }, to, steps: [], trigger: plan.trigger })
    await deps.history.append(entry)
    await deps.status.emit({ type: 'finished', status: 'failed', durationMs: 0, error })
    return entry
  } finally {
    await held.release()
  }
}

/** The journal, unless it names paths this updater would never have written (then it is set aside, never acted on). */
async function trustedJournal(deps: RunDeps): Promise<Journal | undefined> {
  const j = await deps.journal.read()
  const problem = j && journalProblem(j, deps.paths)
  if (!j || !problem) return j
  deps.log.error({ updateId: j.updateId, problem }, 'refused a journal the updater did not write')
  await rename(deps.paths.journal, `${deps.paths.journal}.refused`).catch(() => {})
  return undefined
}

/** `upkeep recover`: takes the lock and ends whatever update was left unfinished. */
export async function recover(deps: RunDeps, mode: RecoveryMode): Promise<RecoveryResult> {
  const held = await deps.lock.acquire()
  try {
    const j = await trustedJournal(deps)
    if (!isUnfinished(j)) return { action: 'nothing' }
    return await recoverJournal(deps, j, mode, held.tookOverStale)
  } finally {
    await held.release()
  }
}

