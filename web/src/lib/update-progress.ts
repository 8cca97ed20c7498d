import type { StatusEvent } from '../../../updater/shared/status'

// Folds the updater's status events (updater/shared/status.ts) into what the page shows:
// the step list with states and durations, a progress fraction, the live log and the outcome.

export type StepState = 'pending' | 'running' | 'done' | 'failed'

export interface StepView {
  name: string
  label: string
  state: StepState
  durationMs?: number
}

export interface LogLine {
  id: number
  level: 'info' | 'warn' | 'error'
  message: string
}

export interface RunView {
  updateId: string
  kind: 'update' | 'rollback'
  from: string
  to: string
  steps: StepView[]
  /** 0…1 */
  fraction: number
  /** Progress inside the running step, e.g. bytes backed up. */
  stepProgress?: { done: number; total?: number; unit: string }
  log: LogLine[]
  status: 'running' | 'complete' | 'rolled_back' | 'failed'
  error?: { code: string; message: string; hint?: string; step?: string }
  failedStep?: string
  rolledBack: boolean
  backupPath?: string
  lastEventId: number
  durationMs?: number
}

export const STEP_LABELS: Record<string, string> = {
  preflight: 'Preflight checks',
  backup: 'Back up data',
  fetch: 'Fetch release',
  build: 'Build',
  switch: 'Switch to new build',
  restart: 'Restart',
  health: 'Health check',
  commit: 'Finish',
  rollback: 'Roll back',
}

const MAX_LOG_LINES = 400

export function labelOf(step: string): string {
  return STEP_LABELS[step] ?? step
}

export function initialRun(): RunView | undefined {
  return undefined
}

function withStep(run: RunView, name: string, patch: Partial<StepView>): StepView[] {
  const steps = run.steps.some((s) => s.name === name) ? run.steps : [...run.steps, { name, label: labelOf(name), state: 'pending' as StepState }]
  return steps.map((s) => (s.name === name ? { ...s, ...patch } : s))
}

function fractionOf(steps: StepView[], stepProgress?: RunView['stepProgress']): number {
  if (!steps.length) return 0
  const done = steps.filter((s) => s.state === 'done' || s.state === 'failed').length
  const running = steps.some((s) => s.state === 'running')
  const partial = running && stepProgress?.total ? Math.min(1, stepProgress.done / stepProgress.total) : 0
  return Math.min(1, (done + partial) / steps.length)
}

/** Applies one event; events of another update than the one shown start a new view. */
export function applyEvent(run: RunView | undefined, e: StatusEvent): RunView | undefined {
  if (e.type === 'update-started') {
    return {
      updateId: e.updateId,
      kind: e.kind,
      from: e.from.version,
      to: e.to.version,
      steps: e.steps.map((name) => ({ name, label: labelOf(name), state: 'pending' })),
      fraction: 0,
      log: [],
      status: 'running',
      rolledBack: false,
      lastEventId: e.id,
    }
  }
  if (!run || run.updateId !== e.updateId || e.id <= run.lastEventId) return run
  let next: RunView = { ...run, lastEventId: e.id }
  switch (e.type) {
    case 'step-started':
      next.steps = withStep(next, e.step, { state: 'running', durationMs: undefined })
      next.stepProgress = undefined
      break
    case 'step-finished':
      next.steps = withStep(next, e.step, { state: 'done', durationMs: e.durationMs })
      next.stepProgress = undefined
      if (e.step === 'rollback') next.rolledBack = true
      break
    case 'step-failed':
      next.steps = withStep(next, e.step, { state: 'failed', durationMs: e.durationMs })
      next.failedStep ??= e.step
      next.error ??= e.error
      next.stepProgress = undefined
      break
    case 'progress':
      next.stepProgress = { done: e.done, total: e.total, unit: e.unit }
      break
    case 'log':
      next.log = [...next.log, { id: e.id, level: e.level, message: e.message }].slice(-MAX_LOG_LINES)
      break
    case 'finished':
      next = {
        ...next,
        status: e.status,
        durationMs: e.durationMs,
        backupPath: e.backupPath,
        error: e.error ?? next.error,
        rolledBack: next.rolledBack || e.status === 'rolled_back',
      }
      // Steps never reached stay pending; a running one (interrupted) is shown as failed.
      if (e.status !== 'complete') next.steps = next.steps.map((s) => (s.state === 'running' ? { ...s, state: 'failed' } : s))
      break
  }
  next.fraction = next.status === 'complete' ? 1 : fractionOf(next.steps, next.stepProgress)
  return next
}

export function applyEvents(run: RunView | undefined, events: StatusEvent[]): RunView | undefined {
  return events.reduce(applyEvent, run)
}
