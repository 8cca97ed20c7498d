import { readDataFile } from '../../updater/shared/data-file'
import { isUnfinished } from '../../updater/shared/journal'
import type { AppPaths } from '../../updater/shared/paths'
import { MAX_REQUEST_BYTES, parseUpdateRequest } from '../../updater/shared/request'
import { updateActivity } from '../../updater/shared/update-activity'
import type { RunningUpdate } from './updates'

/** What the updater is doing, from its own files (the server only reads them). */
export function createRunningUpdate(paths: Pick<AppPaths, 'lock' | 'journal' | 'request'>): () => Promise<RunningUpdate | null> {
  return async () => {
    const activity = await updateActivity(paths)
    if (activity.state === 'idle') return null
    if (activity.state === 'requested') {
      const request = await readRequest(paths.request)
      return {
        state: 'requested',
        updateId: request?.updateId ?? null,
        from: null,
        to: request?.version?.replace(/^v/, '') ?? null,
        startedAt: request?.requestedAt ?? null,
      }
    }
    // Between taking the request and journaling the new update, the journal is still the last one's.
    const journal = isUnfinished(activity.journal) ? activity.journal : undefined
    return {
      state: activity.state,
      updateId: journal?.updateId ?? null,
      from: journal?.from.version ?? null,
      to: journal?.to.version ?? null,
      startedAt: journal?.startedAt ?? null,
    }
  }
}

async function readRequest(file: string) {
  try {
    // The updater takes it with the same limits: no symlink, no waiting on a FIFO, 4 KiB.
    return parseUpdateRequest(JSON.parse((await readDataFile(file, { maxBytes: MAX_REQUEST_BYTES })) ?? ''))
  } catch {
    return undefined // taken meanwhile, or not ours to trust
  }
}
