import { stat } from 'node:fs/promises'
import { readDataFile } from './data-file'
import { isStale, isUnfinished, readJournal, type Journal } from './journal'
import type { AppPaths } from './paths'
import { isProcessAlive, processStartTime } from './pidfile'

/** proper-lockfile refreshes the lock directory's mtime this often (and calls it stale after LOCK_STALE_MS). */
export const LOCK_UPDATE_MS = 5_000
export const LOCK_STALE_MS = 30_000

/** `data/update.lock.owner.json`: who holds `data/update.lock`, so a dead holder is seen at once. */
export interface LockOwner {
  pid: number
  start?: number
  since: string
}

export function lockOwnerFile(paths: Pick<AppPaths, 'lock'>): string {
  return `${paths.lock}.owner.json`
}

/** The lock's owner as an updater recorded it; root kills that pid's group when stale, so a forged record is ignored. */
export async function readLockOwner(paths: Pick<AppPaths, 'lock'>): Promise<LockOwner | undefined> {
  try {
    const v = JSON.parse((await readDataFile(lockOwnerFile(paths), { maxBytes: 4096, trustedOnly: true })) ?? '') as LockOwner
    return typeof v.pid === 'number' ? v : undefined
  } catch {
    return undefined
  }
}

/**
 * True while a live updater holds the update lock. A lock whose owner is dead is not held;
 * one without an owner record yet, or whose owner this process cannot see, is held while
 * proper-lockfile keeps it fresh.
 */
export async function isLockHeld(paths: Pick<AppPaths, 'lock'>, now: Date = new Date()): Promise<boolean> {
  let mtime: number
  try {
    mtime = (await stat(paths.lock)).mtimeMs
  } catch {
    return false
  }
  const fresh = now.getTime() - mtime < LOCK_STALE_MS
  const owner = await readLockOwner(paths)
  if (owner) return isProcessAlive(owner.pid, owner.start) || (isHiddenProcess(owner.pid) && fresh)
  return fresh
}

/**
 * The process exists (kill(2) finds it) but /proc does not show it: upkeep.service runs with
 * ProtectProc=invisible and PrivateUsers=yes, so updaters in another unit are hidden from the
 * server, root's (kill says EPERM) and its own user's (kill succeeds) alike.
 */
function isHiddenProcess(pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false
  }
  return processStartTime(pid) === undefined
}

export type Activity =
  | { state: 'idle'; last?: Journal }
  | { state: 'requested' }
  | { state: 'running'; journal?: Journal }
  /** The updater died (or hung past the stale limit) mid-update; `upkeep recover` must run. */
  | { state: 'interrupted'; journal: Journal; stale: boolean }

/** What the server needs to know before accepting an update request. Reads only. */
export async function updateActivity(paths: Pick<AppPaths, 'lock' | 'journal' | 'request'>, now: Date = new Date(), staleAfterMs?: number): Promise<Activity> {
  // The updater holds the lock from before its first journal write until after its last, so a
  // journal read between two looks that find the lock free is not being written: read it there.
  // (Read before the lock alone, an update ending in between looked interrupted.)
  let held = await isLockHeld(paths, now)
  const journal = await readJournal(paths.journal)
  held ||= await isLockHeld(paths, now)
  const stale = isUnfinished(journal) && isStale(journal, now, staleAfterMs)
  if (held && !stale) return { state: 'running', ...(journal ? { journal } : {}) }
  if (await exists(paths.request)) return { state: 'requested' }
  if (isUnfinished(journal)) return { state: 'interrupted', journal, stale }
  return { state: 'idle', ...(journal ? { last: journal } : {}) }
}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file)
    return true
  } catch {
    return false
  }
}
