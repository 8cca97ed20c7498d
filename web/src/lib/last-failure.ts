import type { HistoryEntry } from '../../../updater/shared/history'

// What the history says about the last update, for the page after a reload: the live events
// are gone, the history entry is not.

/** The newest attempt when it did not complete (entries come newest first, as the API lists them). */
export function lastFailure<E extends Pick<HistoryEntry, 'status'>>(entries: readonly E[] | null | undefined): E | undefined {
  const newest = entries?.[0]
  return newest && newest.status !== 'complete' ? newest : undefined
}

/** The release that failed to install last, while nothing was installed after it. */
export function failedVersion(entries: readonly Pick<HistoryEntry, 'status' | 'kind' | 'to'>[] | null | undefined): string | undefined {
  const failure = lastFailure(entries)
  return failure && failure.kind === 'update' && failure.to.version ? failure.to.version : undefined
}
