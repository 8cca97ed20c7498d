import type { UpdatesStatus } from '../api'
import type { RunView } from './update-progress'

export type RunningUpdate = NonNullable<UpdatesStatus['running']>

/**
 * The update the server reports as requested or running, unless it is the run this page has
 * already seen end: for a moment after the end the updater still holds its lock, and the
 * server reports "running" without an id.
 */
export function pendingUpdate(running: RunningUpdate | null | undefined, run: RunView | undefined): RunningUpdate | null {
  if (!running || running.state === 'interrupted') return null
  const ended = run !== undefined && run.status !== 'running'
  if (ended && (running.updateId === run.updateId || (running.state === 'running' && running.updateId === null))) return null
  return running
}
