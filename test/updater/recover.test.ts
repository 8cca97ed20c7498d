import { describe, expect, test } from 'vitest'
import type { Journal, StepName, StepPhase } from '../../updater/shared/journal'
import { MAX_RECOVERIES, planRecovery, type RecoveryAction } from '../../updater/recover'

const j = (step: StepName | undefined, phase: StepPhase = 'started', over: Partial<Journal> = {}) =>
  ({ state: 'running', recoveries: 0, steps: step ? [{ name: step, phase, startedAt: '' }] : [], ...over }) as Journal

describe('planRecovery: died in step X (phase) → do Y', () => {
  test.each<[string, Journal | undefined, RecoveryAction]>([
    ['no journal', undefined, 'nothing'],
    ['a finished update', j('commit', 'finished', { state: 'done' }), 'nothing'],
    ['before the first step', j(undefined), 'clean-up'],
    ['preflight (started)', j('preflight'), 'clean-up'],
    ['preflight (failed)', j('preflight', 'failed'), 'clean-up'],
    ['backup (started)', j('backup'), 'clean-up'],
    ['backup (finished)', j('backup', 'finished'), 'clean-up'],
    ['fetch (started)', j('fetch'), 'clean-up'],
    ['fetch (finished)', j('fetch', 'finished'), 'clean-up'],
    ['build (started)', j('build'), 'clean-up'],
    ['build (failed)', j('build', 'failed'), 'clean-up'],
    ['build (finished)', j('build', 'finished'), 'clean-up'],
    ['switch (started)', j('switch'), 'roll-back'],
    ['switch (finished)', j('switch', 'finished'), 'roll-back'],
    ['restart (started)', j('restart'), 'roll-back'],
    ['restart (finished)', j('restart', 'finished'), 'roll-back'],
    ['health (started)', j('health'), 'roll-back'],
    ['health (failed, rolling back)', j('health', 'failed', { state: 'rolling_back' }), 'roll-back'],
    ['health (finished)', j('health', 'finished'), 'roll-back'],
    ['soak (started)', j('soak'), 'roll-back'],
    ['soak (failed, rolling back)', j('soak', 'failed', { state: 'rolling_back' }), 'roll-back'],
    ['commit (started)', j('commit'), 'finish-commit'],
    ['commit (finished)', j('commit', 'finished'), 'finish-commit'],
    ['rollback (started)', j('rollback', 'started', { state: 'rolling_back' }), 'roll-back'],
    ['rollback (finished)', j('rollback', 'finished', { state: 'rolling_back' }), 'roll-back'],
    [`build after ${MAX_RECOVERIES} recoveries`, j('build', 'started', { recoveries: MAX_RECOVERIES }), 'give-up'],
    [`health after ${MAX_RECOVERIES} recoveries`, j('health', 'started', { recoveries: MAX_RECOVERIES }), 'give-up'],
    [`commit after ${MAX_RECOVERIES - 1} recoveries`, j('commit', 'started', { recoveries: MAX_RECOVERIES - 1 }), 'finish-commit'],
  ])('%s → %s', (_name, journal, action) => {
    expect(planRecovery(journal)).toBe(action)
  })
})
