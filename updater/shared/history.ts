import { readDataFile } from './data-file'
import { parseJsonLines } from './json-lines'
import { writeFileAtomic } from './atomic-write'
import type { InstalledFrom } from './installed-from'
import type { ErrorInfo, Outcome, StepName } from './journal'

/**
 * One line of `data/update-history.jsonl`: every update attempt, appended by the updater when
 * the attempt ends (complete, rolled back or failed). Fields may be added; none is renamed.
 */
export interface HistoryEntry {
  id: string
  /** The app (absent in entries of Upkeep itself made before there were apps). */
  app?: string
  kind: 'update' | 'rollback'
  trigger: 'cli' | 'request' | 'auto'
  from: { version: string; tag?: string; commit?: string; installedFrom?: InstalledFrom }
  /** `installedFrom`: how the target was installed (an artifact and its key, or a source build). */
  to: { version: string; tag: string; commit?: string; installedFrom?: InstalledFrom }
  status: Outcome
  startedAt: string
  finishedAt: string
  durationMs: number
  steps: { name: StepName; status: 'finished' | 'failed' | 'started'; durationMs?: number }[]
  error?: ErrorInfo
  /** The data backup taken before the update (restore by hand: `tar xzf`). */
  backupPath?: string
  /** Where a rollback kept the failed version's data. */
  dataAside?: string
  /** True when `upkeep recover` ended this attempt after the updater died. */
  recovered?: boolean
}

export function parseHistory(text: string): HistoryEntry[] {
  return parseJsonLines(text, (e): e is HistoryEntry => typeof (e as HistoryEntry)?.id === 'string' && typeof (e as HistoryEntry).status === 'string')
}

const MAX_HISTORY_BYTES = 64 << 20

/** Every entry, oldest first. */
export async function readHistory(file: string): Promise<HistoryEntry[]> {
  try {
    // Not a FIFO or symlink the server planted: the root updater reads this before rewriting it.
    return parseHistory((await readDataFile(file, { maxBytes: MAX_HISTORY_BYTES })) ?? '')
  } catch {
    return []
  }
}

/**
 * Adds `entry` (replacing an entry with the same id, so recovery may record twice safely).
 * The whole file is rewritten atomically: it is small, and a torn history is never seen.
 */
export async function appendHistory(file: string, entry: HistoryEntry): Promise<void> {
  const entries = (await readHistory(file)).filter((e) => e.id !== entry.id)
  entries.push(entry)
  await writeFileAtomic(file, entries.map((e) => JSON.stringify(e)).join('\n') + '\n')
}

export interface HistoryStore {
  read(): Promise<HistoryEntry[]>
  append(entry: HistoryEntry): Promise<void>
}

export function fileHistory(file: string): HistoryStore {
  return { read: () => readHistory(file), append: (e) => appendHistory(file, e) }
}

export function memoryHistory(): HistoryStore & { entries: HistoryEntry[] } {
  const entries: HistoryEntry[] = []
  return {
    entries,
    async read() {
      return [...entries]
    },
    async append(e) {
      const i = entries.findIndex((x) => x.id === e.id)
      if (i >= 0) entries.splice(i, 1)
      entries.push(e)
    },
  }
}
