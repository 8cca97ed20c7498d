import type { RunView, StepView } from './update-progress'

// How far an update is, as a bar that keeps moving: finished steps count by how long they
// usually take, and the running step fills its share as time passes (never all of it until
// it has really finished). Pure: `now` is the browser's clock.

/** Shares of the bar: the build is most of the wait, restart and health check the rest. */
const WEIGHT: Record<string, number> = { preflight: 2, backup: 6, fetch: 5, build: 45, switch: 2, restart: 10, health: 15, soak: 15, commit: 3 }
/** A step's usual duration: after this long the running step has filled about 63 % of its share. */
const TYPICAL_MS: Record<string, number> = { preflight: 1500, backup: 4000, fetch: 4000, build: 45_000, switch: 1000, restart: 4000, health: 8000, soak: 120_000, commit: 1500, rollback: 10_000 }
/** A running step never fills its whole share: the bar waits for the step to finish. */
const RUNNING_CAP = 0.95

/** The server's clock now, from the browser's (events carry server times). */
export function serverNow(run: RunView, now: number): number {
  return now - run.clockOffsetMs
}

function filled(run: RunView, step: StepView, now: number): number {
  if (step.state === 'done' || step.state === 'failed') return 1
  if (step.state !== 'running') return 0
  const p = run.stepProgress
  if (p?.total) return Math.min(RUNNING_CAP, p.done / p.total)
  const elapsed = serverNow(run, now) - (step.startedAt ?? Number.NaN)
  if (!Number.isFinite(elapsed) || elapsed <= 0) return 0
  return RUNNING_CAP * (1 - Math.exp(-elapsed / (TYPICAL_MS[step.name] ?? 5000)))
}

/** 0…1; exactly 1 only when the update has ended (whatever the outcome). */
export function progressOf(run: RunView, now: number): number {
  if (run.status !== 'running') return 1
  const plan = run.steps.filter((s) => s.name !== 'rollback')
  const total = plan.reduce((sum, s) => sum + (WEIGHT[s.name] ?? 5), 0)
  const part = (s: StepView) => (WEIGHT[s.name] ?? 5) * filled(run, s, now)
  const planned = total ? plan.reduce((sum, s) => sum + part(s), 0) / total : 0
  const rollback = run.steps.find((s) => s.name === 'rollback')
  // After a failure no planned step runs any more: the rollback fills what is left of the bar.
  if (run.failedStep || rollback) return Math.min(0.99, planned + (1 - planned) * (rollback ? filled(run, rollback, now) : 0))
  return Math.min(0.99, planned)
}

/** Time since the update started (its duration once it has ended). */
export function elapsedMs(run: RunView, now: number): number | undefined {
  if (run.status !== 'running' && run.durationMs !== undefined) return run.durationMs
  const ms = serverNow(run, now) - run.startedAt
  return Number.isFinite(ms) ? Math.max(0, ms) : undefined
}

/** 42_000 → "0:42", 3_723_000 → "1:02:03". */
export function formatClock(ms: number): string {
  const total = Math.floor(ms / 1000)
  const h = Math.floor(total / 3600)
  const m = Math.floor((total % 3600) / 60)
  const s = String(total % 60).padStart(2, '0')
  return h ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`
}
