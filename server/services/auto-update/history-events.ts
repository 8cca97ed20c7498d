import { writeJsonAtomic } from '../../../updater/shared/atomic-write'
import { readDataFile } from '../../../updater/shared/data-file'
import type { HistoryEntry } from '../../../updater/shared/history'
import type { EventInput } from './events'

/**
 * Turns the app's update history into events. The history is written by the updater, which
 * outlives the server's restart, so a server that reads it on start still announces an update
 * that ended while it was down (Upkeep updating itself) — a cursor remembers what was announced.
 */

/** A history entry as written, with the `auto` trigger the scheduler's attempts carry. */
export type HistoryRecord = Omit<HistoryEntry, 'trigger'> & { trigger: HistoryEntry['trigger'] | 'auto' }

/** The step the updater records for a failure after health, while it keeps watching the new version. */
export const SOAK_STEP = 'soak'

/** The event an ended attempt becomes. */
export function eventForAttempt(app: string, e: HistoryRecord, url?: string): EventInput {
  const base = {
    // The same attempt always gives the same id: a receiver drops a repeat after a restart.
    id: `${app}:${e.id}:${e.status}`,
    app,
    updateId: e.id,
    version: { from: e.from.version, to: e.to.version },
    trigger: e.trigger === 'auto' ? ('auto' as const) : ('manual' as const),
    ...(e.error ? { error: { code: e.error.code, message: e.error.message } } : {}),
    ...(url ? { url } : {}),
  }
  if (e.kind === 'rollback') return { ...base, event: e.status === 'complete' ? 'update-rolled-back' : 'update-failed', detail: 'upkeep rollback' }
  if (e.status === 'complete') return { ...base, event: 'update-completed' }
  if (e.status === 'rolled_back') return { ...base, event: 'update-rolled-back', ...(e.error?.step === SOAK_STEP ? { detail: 'during soak' } : {}) }
  return { ...base, event: 'update-failed' }
}

/** The `update-started` event of an update the journal shows running. */
export function eventForStart(app: string, j: { updateId: string; from: { version: string }; to: { version: string }; trigger: string }, url?: string): EventInput {
  return { id: `${app}:${j.updateId}:started`, event: 'update-started', app, updateId: j.updateId, version: { from: j.from.version, to: j.to.version }, trigger: j.trigger === 'auto' ? 'auto' : 'manual', ...(url ? { url } : {}) }
}

export interface HistoryCursor {
  /** finishedAt of the newest entry announced. */
  finishedAt: string
  /** Ids announced lately (an entry recorded twice by recovery is announced once). */
  ids: string[]
}

export interface CursorStore {
  get(): Promise<HistoryCursor | undefined>
  set(c: HistoryCursor): Promise<void>
}

export function memoryCursor(): CursorStore & { value?: HistoryCursor } {
  const store: CursorStore & { value?: HistoryCursor } = {
    get: async () => store.value,
    set: async (c) => void (store.value = c),
  }
  return store
}

export function fileCursor(file: string): CursorStore {
  return {
    async get() {
      try {
        const c = JSON.parse((await readDataFile(file, { maxBytes: 1 << 20 })) ?? 'null') as HistoryCursor | null
        return c && typeof c.finishedAt === 'string' && Array.isArray(c.ids) ? c : undefined
      } catch {
        return undefined
      }
    },
    set: (c) => writeJsonAtomic(file, c),
  }
}

const KEEP_IDS = 100

/**
 * `poll()` announces every attempt that ended since the last poll (in the order they ended) and
 * returns how many. The first poll ever only sets the cursor: old history is not announced.
 */
export function createHistoryWatcher(opts: { app: string; read(): Promise<HistoryRecord[]>; cursor: CursorStore; emit(e: EventInput): void; url?: string }): { poll(): Promise<number> } {
  return {
    async poll() {
      const entries = (await opts.read()).filter((e) => !Number.isNaN(Date.parse(e.finishedAt))).sort((a, b) => Date.parse(a.finishedAt) - Date.parse(b.finishedAt))
      const cursor = await opts.cursor.get()
      if (!cursor) {
        const last = entries[entries.length - 1]
        await opts.cursor.set({ finishedAt: last?.finishedAt ?? new Date(0).toISOString(), ids: entries.slice(-KEEP_IDS).map((e) => e.id) })
        return 0
      }
      const since = Date.parse(cursor.finishedAt)
      const fresh = entries.filter((e) => Date.parse(e.finishedAt) >= since && !cursor.ids.includes(e.id))
      if (fresh.length === 0) return 0
      for (const e of fresh) opts.emit(eventForAttempt(opts.app, e, opts.url))
      // Saved after emitting: a crash in between announces again (same ids) rather than never.
      await opts.cursor.set({ finishedAt: fresh[fresh.length - 1]!.finishedAt, ids: [...cursor.ids, ...fresh.map((e) => e.id)].slice(-KEEP_IDS) })
      return fresh.length
    },
  }
}
