import type { HistoryEntry } from '../../../updater/shared/history'

// What the history says about the last update, for the page after a reload: the live events
// are gone, the history entry is not.

/** The newest attempt when it did not complete (entries come newest first, as the API lists them). */
export function lastFailure<E extends Pick<HistoryEntry, 'status'>>(entries: readonly E[] | null | undefined): E | undefined {
  const newest = entries?.[0]
  return newest && newest.status !== 'complete' ? newest : undefined
}

/** Steps whose failure points at the release itself; before them (preflight, backup, fetch) the cause is on this server. */
const RELEASE_STEPS = new Set<string>(['build', 'switch', 'restart', 'health', 'soak'])

/** The step an attempt failed in (not counting its rollback). */
export function failedStepOf(entry: Pick<HistoryEntry, 'steps' | 'error'>): string | undefined {
  return entry.steps.find((s) => s.status !== 'finished' && s.name !== 'rollback')?.name ?? entry.error?.step
}

/** The failure was the release's own: it was rolled back, or its build, switch, restart or health check failed. */
export function blamesRelease(outcome: { status: string; failedStep?: string | undefined }): boolean {
  return outcome.status === 'rolled_back' || (outcome.failedStep !== undefined && RELEASE_STEPS.has(outcome.failedStep))
}

/** The release that failed to install last (by its own fault), while nothing was installed after it. */
export function failedVersion(entries: readonly Pick<HistoryEntry, 'status' | 'kind' | 'to' | 'steps' | 'error'>[] | null | undefined): string | undefined {
  const failure = lastFailure(entries)
  return failure && failure.kind === 'update' && failure.to.version && blamesRelease({ status: failure.status, failedStep: failedStepOf(failure) }) ? failure.to.version : undefined
}
