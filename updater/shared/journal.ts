import { writeJsonAtomic } from './atomic-write'
import { readDataFile } from './data-file'
import type { InstalledFrom } from './installed-from'

/**
 * `data/update-journal.json`: the updater's persisted state machine (DESIGN.md "Update flow").
 * Written only by the updater, atomically, before every side effect; the server only reads it.
 * Step names, phases, states and outcomes are persisted strings: add new ones, never rename.
 */
export const STEP_NAMES = ['preflight', 'backup', 'fetch', 'build', 'switch', 'restart', 'health', 'commit', 'rollback', 'soak'] as const
export type StepName = (typeof STEP_NAMES)[number]
export type StepPhase = 'started' | 'finished' | 'failed'
export type Outcome = 'complete' | 'rolled_back' | 'failed'

export interface ErrorInfo {
  code: string
  message: string
  hint?: string
  step?: string
}

export interface JournalStep {
  name: StepName
  phase: StepPhase
  startedAt: string
  finishedAt?: string
  durationMs?: number
  error?: ErrorInfo
  /** Step-specific facts (build command timings, backup size…). */
  detail?: Record<string, unknown>
}

/** A build of the app as the updater knows it: `.upkeep/releases/<name>` holds it. */
export interface ReleaseRef {
  version: string
  tag?: string
  commit?: string
  /** Absolute path of the release directory, when there is one. */
  release?: string
  /** How it was installed: a verified artifact, or a build of the tag (signed or not). */
  installedFrom?: InstalledFrom
}

export interface Journal {
  schema: 1
  updateId: string
  /** The app being updated (absent in journals of Upkeep itself made before there were apps). */
  app?: string
  /** Version of the updater that started this update: its copy settles it after a crash. */
  updaterVersion?: string
  /** `update` installs a release; `rollback` is `upkeep rollback` to server.bak. */
  kind: 'update' | 'rollback'
  trigger: 'cli' | 'request' | 'auto'
  /** The updater process that owns this update (and its start time, against pid reuse). */
  pid: number
  pidStart?: number
  startedAt: string
  /** Every journal write bumps it: "no progress for 30 minutes" is measured from here. */
  updatedAt: string
  from: ReleaseRef & {
    /** Branch the checkout was on, when it was on one (restored by rollback). */
    branch?: string
    /** Target of `server.bak` before the update, restored by rollback. */
    bak?: string
  }
  to: ReleaseRef & {
    tag: string
    /** `in-place` layout: the staging checkout the build ran in, and what it made there (top-level names). */
    staging?: string
    outputs?: string[]
  }
  /** `in-place` layout: the previous build's entries moved to `.upkeep/previous` at the switch. */
  movedAside?: string[]
  /** `fromSource`: build from the tag even when the app publishes artifacts (`upkeep update --from-source`). */
  options: { backup: boolean; force: boolean; fromSource?: boolean }
  state: 'running' | 'rolling_back' | 'done'
  steps: JournalStep[]
  /** The archive made by the backup step. */
  backup?: { path: string; manifest: string }
  /** A build command in flight: its process group is killed by recovery if the updater died. */
  child?: { pid: number; start?: number; argv: string[] }
  /** Where rollback moved the failed version's data. */
  dataAside?: string
  /** How often `upkeep recover` took this journal over (loop guard). */
  recoveries: number
  outcome?: Outcome
  error?: ErrorInfo
  finishedAt?: string
}

/** The step the update is in (or died in) and its phase; undefined before the first step. */
export function lastStep(j: Journal): JournalStep | undefined {
  return j.steps[j.steps.length - 1]
}

/** An update that started and was not brought to an end (complete, rolled back or failed). */
export function isUnfinished(j: Journal | undefined): j is Journal {
  return j !== undefined && j.state !== 'done'
}

export const STALE_AFTER_MS = 30 * 60_000

/** No journal progress for `staleAfterMs`: the updater is hung (or gone) and the update is given up. */
export function isStale(j: Journal, now: Date, staleAfterMs = STALE_AFTER_MS): boolean {
  return isUnfinished(j) && now.getTime() - Date.parse(j.updatedAt) > staleAfterMs
}

/** The storage contract (umzug-style): a file in production, memory in tests. */
export interface JournalStore {
  read(): Promise<Journal | undefined>
  write(journal: Journal): Promise<void>
}

/** Journals are small; a bigger file is not one the updater wrote. */
const MAX_JOURNAL_BYTES = 16 << 20

/**
 * The journal, when it is one the updater wrote. Root acts on it (it kills `child.pid`, points
 * `current` at `from.release`), so a journal the server forged or linked elsewhere is ignored.
 */
export async function readJournal(file: string): Promise<Journal | undefined> {
  try {
    const j = JSON.parse((await readDataFile(file, { maxBytes: MAX_JOURNAL_BYTES, trustedOnly: true })) ?? '') as Journal
    return j && j.schema === 1 && typeof j.updateId === 'string' && Array.isArray(j.steps) ? j : undefined
  } catch {
    return undefined
  }
}

export function fileJournal(file: string): JournalStore {
  return {
    read: () => readJournal(file),
    write: (j) => writeJsonAtomic(file, j),
  }
}

export function memoryJournal(initial?: Journal): JournalStore & { writes: Journal[] } {
  let current = initial ? structuredClone(initial) : undefined
  const writes: Journal[] = []
  return {
    writes,
    async read() {
      return current ? structuredClone(current) : undefined
    },
    async write(j) {
      current = structuredClone(j)
      writes.push(structuredClone(j))
    },
  }
}
