import { lastStep, type Journal, type StepName, type StepPhase } from './shared/journal'

/**
 * What to do with an update the updater did not finish (it was killed, the machine lost power,
 * or it hung): Mender's recovery table. Pure: the journal in, the action out.
 *
 * | died in                                   | action        | why                                             |
 * |-------------------------------------------|---------------|-------------------------------------------------|
 * | (no journal, or journal done)             | nothing       |                                                 |
 * | any step, after MAX_RECOVERIES attempts   | give-up       | loop guard: recovery itself keeps dying          |
 * | preflight, backup, fetch, build (any phase)| clean-up     | nothing live changed: drop staging, old stays   |
 * | switch, restart, health (any phase)       | roll-back     | the new build may be live but was never proven  |
 * | soak (any phase)                          | roll-back     | it passed health but was not watched to the end |
 * | commit (any phase)                        | finish-commit | health passed: the new version serves           |
 * | rollback, or state rolling_back           | roll-back     | rolling back is idempotent: do it again          |
 */
export type RecoveryAction = 'nothing' | 'clean-up' | 'roll-back' | 'finish-commit' | 'give-up'

export const MAX_RECOVERIES = 3

const ROW: Record<StepName, RecoveryAction> = {
  preflight: 'clean-up',
  backup: 'clean-up',
  fetch: 'clean-up',
  build: 'clean-up',
  switch: 'roll-back',
  restart: 'roll-back',
  health: 'roll-back',
  soak: 'roll-back',
  commit: 'finish-commit',
  rollback: 'roll-back',
}

export function planRecovery(j: Pick<Journal, 'state' | 'steps' | 'recoveries'> | undefined): RecoveryAction {
  if (!j || j.state === 'done') return 'nothing'
  if (j.recoveries >= MAX_RECOVERIES) return 'give-up'
  if (j.state === 'rolling_back') return 'roll-back'
  const step = lastStep(j as Journal)
  if (!step) return 'clean-up'
  return ROW[step.name]
}

/** Where an update died, for messages: "build (started)". */
export function diedIn(j: Pick<Journal, 'steps'>): { step: StepName; phase: StepPhase } | undefined {
  const s = j.steps[j.steps.length - 1]
  return s ? { step: s.name, phase: s.phase } : undefined
}
