import { rm } from 'node:fs/promises'
import lockfile from 'proper-lockfile'
import { writeJsonAtomic } from '../shared/atomic-write'
import { UpdateError } from '../shared/errors'
import { isStale, isUnfinished, readJournal } from '../shared/journal'
import type { Logger } from '../shared/log'
import type { AppPaths } from '../shared/paths'
import { isProcessAlive, processStartTime } from '../shared/pidfile'
import { LOCK_STALE_MS, LOCK_UPDATE_MS, lockOwnerFile, readLockOwner } from '../shared/update-activity'
import { killGroup } from './exec'

export interface HeldLock {
  /** True when the lock was taken over from a hung updater (no journal progress past the stale limit). */
  tookOverStale: boolean
  release(): Promise<void>
}

export interface UpdateLock {
  acquire(): Promise<HeldLock>
}

/**
 * The one-updater-at-a-time lock: proper-lockfile's `data/update.lock` directory plus an owner
 * record, so a holder that was killed is noticed at once instead of after the stale time.
 */
export function createUpdateLock(paths: Pick<AppPaths, 'lock' | 'journal' | 'stateDir'>, opts: { log: Logger; staleAfterMs: number; now?: () => Date }): UpdateLock {
  const now = opts.now ?? (() => new Date())
  const tryLock = () =>
    lockfile.lock(paths.stateDir, {
      lockfilePath: paths.lock,
      realpath: false,
      stale: LOCK_STALE_MS,
      update: LOCK_UPDATE_MS,
      onCompromised: (err) => opts.log.error({ err }, 'update lock compromised'),
    })
  const breakLock = async () => {
    await rm(paths.lock, { recursive: true, force: true })
    await rm(lockOwnerFile(paths), { force: true })
  }

  return {
    async acquire() {
      let tookOverStale = false
      let release: () => Promise<void>
      try {
        release = await tryLock()
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ELOCKED') throw err
        const owner = await readLockOwner(paths)
        const journal = await readJournal(paths.journal)
        if (owner && !isProcessAlive(owner.pid, owner.start)) {
          opts.log.warn({ pid: owner.pid }, 'breaking the lock of an updater that is gone')
        } else if (owner && isUnfinished(journal) && isStale(journal, now(), opts.staleAfterMs)) {
          opts.log.warn({ pid: owner.pid, updateId: journal.updateId, updatedAt: journal.updatedAt }, 'stopping an updater that made no progress')
          killGroup(owner.pid, 'SIGKILL')
          for (let i = 0; i < 100 && isProcessAlive(owner.pid, owner.start); i++) await new Promise((r) => setTimeout(r, 50))
          tookOverStale = true
        } else {
          const running = isUnfinished(journal) ? ` (update ${journal.updateId} to ${journal.to.tag})` : ''
          throw new UpdateError('LOCKED', `another updater is running${running}${owner ? `, pid ${owner.pid}` : ''}`, {
            hint: 'Wait for it to finish; `upkeep history` shows the result.',
            step: 'preflight',
          })
        }
        await breakLock()
        release = await tryLock()
      }
      await writeJsonAtomic(lockOwnerFile(paths), { pid: process.pid, start: processStartTime(process.pid), since: now().toISOString() })
      return {
        tookOverStale,
        async release() {
          await rm(lockOwnerFile(paths), { force: true })
          await release().catch(() => {})
        },
      }
    },
  }
}
