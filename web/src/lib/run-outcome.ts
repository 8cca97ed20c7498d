import { capitalise } from './error-text'
import { BEFORE_SWITCH, type RunView } from './update-progress'

// How an update run is told in words, the same on the panel, in the banner and on Overview.

/** One wording for a finished run, wherever it shows (panel, banner, notice after the reload). */
export function outcomeTitle(run: Pick<RunView, 'status' | 'to' | 'from' | 'rolledBack'>): string {
  if (run.status === 'running') return `Updating to ${run.to}`
  if (run.status === 'complete') return `Updated to ${run.to}`
  return `Update to ${run.to || 'a new version'} failed`
}

/** What a failed run left running, in one sentence. */
export function outcomeSummary(run: Pick<RunView, 'status' | 'from' | 'failedStep' | 'rolledBack'>): string {
  const from = run.from || 'the previous version'
  if (run.status === 'rolled_back' || (run.status === 'failed' && run.rolledBack)) return `${capitalise(from)} was restored and runs again.`
  if (!run.failedStep || BEFORE_SWITCH.has(run.failedStep)) return `Nothing was changed: ${from} still runs.`
  return `${capitalise(from)} could not be started again.`
}

export function isFailure(run: RunView | undefined): run is RunView & { status: 'failed' | 'rolled_back' } {
  return run !== undefined && (run.status === 'failed' || run.status === 'rolled_back')
}
