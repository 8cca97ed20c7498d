import type { StatusEvent } from '../../../updater/shared/status'
import type { HistoryEntry } from '../../../updater/shared/history'
import { splitMessage } from './error-text'
import { failedStepOf } from './last-failure'

// Folds the updater's status events (updater/shared/status.ts) into what the page shows:
// the step list with states and durations, the live log and the outcome. Pure: the time an
// event arrived is passed in, so the view can be replayed in tests.

/** `skipped`: never run because the update failed before it (shown after the rollback). */
export type StepState = 'pending' | 'running' | 'done' | 'failed' | 'skipped'

export interface StepView {
  name: string
  label: string
  state: StepState
  durationMs?: number
  /** When the step started, in the server's clock (ms since the epoch). */
  startedAt?: number
}

export interface LogLine {
  id: number
  level: 'info' | 'warn' | 'error'
  message: string
  /** Written by the page from a step event (▶ ✓ ✗), not a line the updater logged. */
  fromStep?: boolean
}

export type RunStatus = 'running' | 'complete' | 'rolled_back' | 'failed'

export interface RunView {
  updateId: string
  kind: 'update' | 'rollback'
  from: string
  to: string
  steps: StepView[]
  /** Progress inside the running step, e.g. bytes backed up. */
  stepProgress?: { done: number; total?: number; unit: string }
  log: LogLine[]
  status: RunStatus
  error?: { code: string; message: string; hint?: string; step?: string }
  failedStep?: string
  rolledBack: boolean
  backupPath?: string
  lastEventId: number
  /** The update's start in the server's clock (ms); NaN when unknown. */
  startedAt: number
  durationMs?: number
  /** Browser clock minus server clock, estimated from the freshest event (for elapsed time). */
  clockOffsetMs: number
  /** Where the progress bar was when a rollback began: the rollback fills the rest. */
  rollbackFrom?: number
  /** A run that had ended before this page loaded (from the history, its log replayed when still on file). */
  fromHistory?: boolean
}

export const STEP_LABELS: Record<string, string> = {
  preflight: 'Preflight checks',
  backup: 'Back up data',
  fetch: 'Fetch release',
  build: 'Build',
  switch: 'Switch to new build',
  restart: 'Restart',
  health: 'Health check',
  soak: 'Watch the new version',
  commit: 'Finish',
  rollback: 'Roll back',
}

const MAX_LOG_LINES = 400

export function labelOf(step: string): string {
  return STEP_LABELS[step] ?? step
}

/** Steps before `switch` change nothing live: a failure there needs no rollback. */
export const BEFORE_SWITCH = new Set(['preflight', 'backup', 'fetch', 'build'])

/** Sets a step's fields; a step that is not in the plan (the rollback) goes after the last step that ran. */
function withStep(steps: StepView[], name: string, patch: Partial<StepView>): StepView[] {
  if (!steps.some((s) => s.name === name)) {
    const added: StepView = { name, label: labelOf(name), state: 'pending' }
    const lastReached = steps.reduce((at, s, i) => (s.state === 'pending' || s.state === 'skipped' ? at : i), -1)
    steps = [...steps.slice(0, lastReached + 1), added, ...steps.slice(lastReached + 1)]
  }
  return steps.map((s) => (s.name === name ? { ...s, ...patch } : s))
}

/** Steps never reached by a run that failed are skipped, and go after the rollback. */
function settleSkipped(steps: StepView[]): StepView[] {
  const marked = steps.map((s) => (s.state === 'pending' ? { ...s, state: 'skipped' as const } : s.state === 'running' ? { ...s, state: 'failed' as const } : s))
  return [...marked.filter((s) => s.state !== 'skipped'), ...marked.filter((s) => s.state === 'skipped')]
}

function ms(iso: string | undefined): number {
  return iso ? Date.parse(iso) : Number.NaN
}

function line(run: RunView, id: number, level: LogLine['level'], message: string, fromStep = true): LogLine[] {
  return [...run.log, { id, level, message, ...(fromStep ? { fromStep } : {}) }].slice(-MAX_LOG_LINES)
}

const OUTCOME_LINE: Record<RunStatus, (r: RunView) => string> = {
  running: () => '',
  complete: (r) => `Updated to ${r.to}.`,
  rolled_back: (r) => `Rolled back: ${r.from || 'the previous version'} runs again.`,
  failed: (r) => (r.rolledBack || !r.failedStep || BEFORE_SWITCH.has(r.failedStep) ? `Update to ${r.to} failed.` : `Update to ${r.to} failed and could not be rolled back.`),
}

/**
 * Applies one event that arrived at `receivedAt` (browser clock). Events of another update than
 * the one shown start a new view only if they are its `update-started`.
 */
export function applyEvent(run: RunView | undefined, e: StatusEvent, receivedAt: number = Date.now()): RunView | undefined {
  const offset = receivedAt - ms(e.at)
  if (e.type === 'update-started') {
    return {
      updateId: e.updateId,
      kind: e.kind,
      from: e.from.version,
      to: e.to.version,
      steps: e.steps.map((name) => ({ name, label: labelOf(name), state: 'pending' })),
      log: [],
      status: 'running',
      rolledBack: false,
      lastEventId: e.id,
      startedAt: ms(e.at),
      clockOffsetMs: Number.isFinite(offset) ? offset : 0,
    }
  }
  if (!run || run.updateId !== e.updateId || e.id <= run.lastEventId) return run
  let next: RunView = { ...run, lastEventId: e.id }
  // The smallest delay seen is the closest to the clocks' real difference (replayed events are older).
  if (Number.isFinite(offset) && offset < run.clockOffsetMs) next.clockOffsetMs = offset
  const label = 'step' in e && e.step ? labelOf(e.step) : ''
  switch (e.type) {
    case 'step-started':
      next.steps = withStep(next.steps, e.step, { state: 'running', durationMs: undefined, startedAt: ms(e.at) })
      next.stepProgress = undefined
      next.log = line(next, e.id, 'info', `▶ ${label}`)
      break
    case 'step-finished':
      next.steps = withStep(next.steps, e.step, { state: 'done', durationMs: e.durationMs })
      next.stepProgress = undefined
      if (e.step === 'rollback') next.rolledBack = true
      next.log = line(next, e.id, 'info', `✓ ${label} (${formatMs(e.durationMs)})`)
      break
    case 'step-failed': {
      next.steps = withStep(next.steps, e.step, { state: 'failed', durationMs: e.durationMs })
      next.failedStep ??= e.step
      next.error ??= e.error
      next.stepProgress = undefined
      const { headline, output } = splitMessage(e.error.message)
      next.log = line(next, e.id, 'error', `✗ ${label} failed: ${headline}${output ? '\n' + output : ''}`)
      break
    }
    case 'progress':
      next.stepProgress = { done: e.done, total: e.total, unit: e.unit }
      break
    case 'log':
      next.log = line(next, e.id, e.level, e.message, false)
      break
    case 'finished':
      next = {
        ...next,
        status: e.status,
        durationMs: e.durationMs,
        backupPath: e.backupPath ?? next.backupPath,
        error: e.error ?? next.error,
        rolledBack: next.rolledBack || e.status === 'rolled_back',
        stepProgress: undefined,
      }
      if (e.status !== 'complete') next.steps = settleSkipped(next.steps)
      next.log = line(next, e.id, e.status === 'complete' ? 'info' : 'warn', OUTCOME_LINE[e.status](next))
      break
  }
  return next
}

export function applyEvents(run: RunView | undefined, events: StatusEvent[], receivedAt?: number): RunView | undefined {
  return events.reduce<RunView | undefined>((r, e) => applyEvent(r, e, receivedAt), run)
}

function formatMs(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`
}

/**
 * A finished run as the history file remembers it (after a reload the live events may be gone):
 * the same view, without the live log.
 */
export function runFromHistory(e: HistoryEntry): RunView {
  const steps: StepView[] = e.steps.map((s) => ({
    name: s.name,
    label: labelOf(s.name),
    state: s.status === 'finished' ? 'done' : 'failed',
    ...(s.durationMs !== undefined ? { durationMs: s.durationMs } : {}),
  }))
  const failedStep = failedStepOf(e)
  return {
    updateId: e.id,
    kind: e.kind,
    from: e.from.version,
    to: e.to.version,
    steps,
    log: [],
    status: e.status,
    ...(e.error ? { error: e.error } : {}),
    ...(failedStep ? { failedStep } : {}),
    rolledBack: e.status === 'rolled_back' || e.steps.some((s) => s.name === 'rollback' && s.status === 'finished'),
    ...(e.backupPath ? { backupPath: e.backupPath } : {}),
    lastEventId: 0,
    startedAt: ms(e.startedAt),
    durationMs: e.durationMs,
    clockOffsetMs: 0,
    fromHistory: true,
  }
}

/** What a running update is doing, in words: the running step, or between two steps the next one. */
export function activityOf(run: RunView): string {
  const running = run.steps.find((s) => s.state === 'running')
  if (running) return `${running.label}…`
  if (!run.steps.some((s) => s.state !== 'pending')) return 'Starting…'
  const next = run.steps.find((s) => s.state === 'pending')
  return next ? `${next.label}…` : 'Finishing…'
}
