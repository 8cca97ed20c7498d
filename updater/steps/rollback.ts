import { access } from 'node:fs/promises'
import path from 'node:path'
import { UpdateError } from '../shared/errors'
import type { Outcome } from '../shared/journal'
import { removeLink, swapSymlink } from '../adapters/fs'
import { dataChangedSince, readManifest, restoreBackup } from '../backup-archive'
import type { StepContext } from '../context'
import { waitHealthy } from './health'

export type RecoveryMode = 'live' | 'boot'

async function exists(p: string): Promise<boolean> {
  try {
    await access(p)
    return true
  } catch {
    return false
  }
}

/** A directory under data/.rolled-back/ that does not exist yet (a repeated rollback never overwrites one). */
async function asideDirFor(ctx: StepContext): Promise<string> {
  const base = path.join(ctx.paths.dataDir, '.rolled-back', `${ctx.j.updateId}-${ctx.j.to.tag}`)
  for (let i = 0; ; i++) {
    const dir = i ? `${base}.${i}` : base
    if (!(await exists(dir))) return dir
  }
}

/**
 * Puts everything back as it was before the update: the symlinks, the git ref, and data/
 * when the new version changed it (the failed version's data is moved aside, never deleted).
 * Every part is idempotent, so recovery can run it again after a crash. In `boot` mode
 * (before the server starts) nothing is stopped, started or health-checked.
 */
export async function rollBack(ctx: StepContext, mode: RecoveryMode): Promise<{ outcome: Outcome; detail: Record<string, unknown> }> {
  const { j, paths, git } = ctx
  const detail: Record<string, unknown> = { mode }
  if (mode === 'live') {
    await ctx.services.stop().catch((err: Error) => ctx.log.warn({ err }, 'could not stop the server before rolling back'))
  }

  if (j.from.release) await swapSymlink(paths.current, j.from.release, ctx.runAs)
  else await removeLink(paths.current)
  if (j.from.bak) await swapSymlink(paths.serverBak, j.from.bak, ctx.runAs)
  else await removeLink(paths.serverBak)

  const branchCommit = j.from.branch ? await git.revParse(`refs/heads/${j.from.branch}`) : undefined
  if (j.from.branch && branchCommit === j.from.commit) {
    if ((await git.currentBranch()) !== j.from.branch) await git.checkoutBranch(j.from.branch)
  } else if (j.from.commit && (await git.headCommit()) !== j.from.commit) {
    await git.checkoutDetached(j.from.commit)
  }

  if (j.backup) {
    const manifest = await readManifest(j.backup.manifest)
    if (!manifest) {
      await ctx.emit({ type: 'log', level: 'warn', step: 'rollback', message: `backup manifest ${j.backup.manifest} is missing; data/ left as it is` })
    } else if (await dataChangedSince(manifest, paths.dataDir)) {
      const aside = await asideDirFor(ctx)
      j.dataAside = aside
      await ctx.save()
      await restoreBackup({ archive: j.backup.path, dataDir: paths.dataDir, asideDir: aside, exec: ctx.exec })
      detail.dataRestored = true
      await ctx.emit({ type: 'log', level: 'info', step: 'rollback', message: `restored data/ from ${j.backup.path}; the data of ${j.to.tag} is kept in ${aside}` })
    }
  }

  if (mode === 'boot') return { outcome: 'rolled_back', detail }
  if (!j.from.release) {
    await ctx.emit({ type: 'log', level: 'warn', step: 'rollback', message: 'there was no previous build to start; start the server again by hand (npm start)' })
    return { outcome: 'rolled_back', detail }
  }
  try {
    await ctx.services.start()
    detail.health = await waitHealthy(ctx, j.from.version, { release: j.from.release, step: 'rollback' })
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err)
    throw new UpdateError('ROLLBACK_FAILED', `rolled back to ${j.from.version}, but it does not come up either: ${why}`, {
      step: 'rollback',
      hint: j.backup ? `The data backup is ${j.backup.path} (restore by hand: tar xzf it into ${paths.dataDir}).` : 'No data backup was taken for this update.',
      cause: err,
    })
  }
  return { outcome: 'rolled_back', detail }
}
