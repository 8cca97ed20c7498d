import type { AppDefinition } from './shared/apps/definition'
import type { HistoryStore } from './shared/history'
import type { ErrorInfo, Journal, JournalStore, StepName, StepPhase } from './shared/journal'
import type { Logger } from './shared/log'
import type { AppPaths } from './shared/paths'
import type { StatusEventBody, StatusWriter } from './shared/status'
import type { Clock } from './shared/clock'
import type { RunTool } from './artifacts/run-tool'
import type { Exec, RunAs } from './adapters/exec'
import type { Git } from './adapters/git'
import type { HealthProbe } from './adapters/http'
import type { ServiceManager } from './adapters/service-manager'

/** Knobs of the update engine itself (an app's own ones are in its definition). */
export interface Tunables {
  /** No journal progress for this long: the update is stale, marked failed, the lock released. */
  staleAfterMs: number
}

/** What verified releases need: downloads, ssh-keygen and git checks, dependency copies. */
export interface ArtifactDeps {
  fetch: typeof fetch
  /** Short commands run to completion (ssh-keygen, git verify-tag, cp), as the app's user. */
  run: RunTool
  githubApiUrl: string
  /** Upkeep's GITHUB_TOKEN, for Upkeep itself or an app whose definition says `artifacts.token`. */
  githubToken?: string
  userAgent: string
}

/**
 * Every side effect an update has, passed in (the real ones are built in worker/deps.ts). The
 * update runs as the app's own user: `user` is who that is, and nothing here switches users.
 */
export interface Deps {
  app: AppDefinition
  paths: AppPaths
  tunables: Tunables
  /** Runs commands in the app's clean environment. */
  exec: Exec
  git: Git
  services: ServiceManager
  health: HealthProbe
  clock: Clock
  log: Logger
  journal: JournalStore
  status: StatusWriter
  history: HistoryStore
  /** The user the update runs as (the app's): its name and HOME, for hints. */
  user: RunAs
  artifacts: ArtifactDeps
  /** Aborted on SIGTERM/SIGINT: the running step stops and the update fails or rolls back. */
  signal?: AbortSignal
  /** Test-only seam (UPKEEP_TEST_KILL_AT): called after each journaled step boundary. */
  onJournal?: (step: StepName, phase: StepPhase) => void
}

export interface StepContext extends Deps {
  /** The journal being written; change it, then `save()`. */
  j: Journal
  save(): Promise<void>
  /** Records progress without a step change (at most once a minute), keeping the update from going stale. */
  touch(): Promise<void>
  emit(body: StatusEventBody): Promise<void>
  /** Aborted when the update is interrupted or stale. */
  signal: AbortSignal
}

export interface Step {
  name: StepName
  /** Returns facts for the journal (`detail`), e.g. build command timings. */
  run(ctx: StepContext): Promise<Record<string, unknown> | void>
}

/** Turns anything thrown into the persisted `{code, message, hint}`. */
export function errorInfo(err: unknown, step?: StepName): ErrorInfo {
  const e = err as { name?: string; code?: unknown; message?: string; hint?: string; step?: string }
  if (e && e.name === 'UpdateError' && typeof e.code === 'string') {
    return { code: e.code, message: e.message ?? '', ...(e.hint ? { hint: e.hint } : {}), ...(e.step ?? step ? { step: e.step ?? step } : {}) }
  }
  return { code: 'INTERNAL', message: e?.message ?? String(err), ...(step ? { step } : {}) }
}
