import { access } from 'node:fs/promises'
import path from 'node:path'
import { UpdateError } from '../shared/errors'
import type { Outcome } from '../shared/journal'
import { removeLink, swapSymlink } from '../adapters/fs'
import { dataChangedSince, readManifest, restoreBackup } from '../backup-archive'
import type { StepContext } from '../context'
import { dataRoots } from './backup'
import { waitHealthy } from './health'
import { unswitchInPlace } from './switch'

export type RecoveryMode = 'live' | 'boot'

async function exists(p: string): Promise<boolean> {
  try {
    await access(p)
    return true
  } catch {
    return false
  }
}

/** A directory for the failed version's data that does not exist yet (a repeated rollback never overwrites one). */
async function asideDirFor(ctx: StepContext): Promise<string> {
  const base = path.join(ctx.paths.asideRoot, `${ctx.j.updateId}-${ctx.j.to.tag}`)
  for (let i = 0; ; i++) {
    const dir = i ? `${base}.${i}` : base
    if (!(await exists(dir))) return dir
  }
}

/**
 * Puts everything back as it was before the update: the build (symlinks, or the in-place
 * entries), the git ref, and the data when the new version changed it (the failed version's
 * data is moved aside, never deleted). Every part is idempotent, so recovery can run it again
 * after a crash. In `boot` mode (before the app starts) nothing is stopped, started or checked.
 */
export async function rollBack(ctx: StepContext, mode: RecoveryMode): Promise<{ outcome: Outcome; detail: Record<string, unknown> }> {
  const { j, paths, git } = ctx
  const detail: Record<string, unknown> = { mode }
  if (mode === 'live') {
    await ctx.services.stop().catch((err: Error) => ctx.log.warn({ err }, 'could not stop the app before rolling back'))
  }

  if (ctx.app.build.layout === 'in-place') await unswitchInPlace(ctx)
  else {
    if (j.from.release) await swapSymlink(paths.current, j.from.release)
    else await removeLink(paths.current)
    if (j.from.bak) await swapSymlink(paths.serverBak, j.from.bak)
    else await removeLink(paths.serverBak)
  }

  const branchCommit = j.from.branch ? await git.revParse(`refs/heads/${j.from.branch}`) : undefined
  if (j.from.branch && branchCommit === j.from.commit) {
    if ((await git.currentBranch()) !== j.from.branch) await git.checkoutBranch(j.from.branch)
  } else if (j.from.commit && (await git.headCommit()) !== j.from.commit) {
    await git.checkoutDetached(j.from.commit)
  }

  if (j.backup) {
    const manifest = await readManifest(j.backup.manifest)
    const roots = dataRoots(ctx)
    if (!manifest) {
      await ctx.emit({ type: 'log', level: 'warn', step: 'rollback', message: `backup manifest ${j.backup.manifest} is missing; the data is left as it is` })
    } else if (await dataChangedSince(manifest, roots)) {
      const aside = await asideDirFor(ctx)
      j.dataAside = aside
      await ctx.save()
      await restoreBackup({ archive: j.backup.path, roots, asideDir: aside, exec: ctx.exec, onWarning: (message) => void ctx.emit({ type: 'log', level: 'warn', step: 'rollback', message }) }).catch((err: unknown) => {
        // The app stays stopped: the previous version must not run on data it may not understand.
        throw new UpdateError('ROLLBACK_FAILED', `rolled back the code to ${j.from.version}, but could not restore its data from ${j.backup!.path}: ${err instanceof Error ? err.message : String(err)}; the app stays stopped`, {
          step: 'rollback',
          hint: `Restore the data by hand (tar xzf ${j.backup!.path}, as the app's user; what is there now can go to ${aside}), then start the app. Something else may have been moving files in the data directory.`,
          cause: err,
        })
      })
      detail.dataRestored = true
      await ctx.emit({ type: 'log', level: 'info', step: 'rollback', message: `restored the data from ${j.backup.path}; the data of ${j.to.tag} is kept in ${aside}` })
    }
  }

  if (mode === 'boot') return { outcome: 'rolled_back', detail }
  if (ctx.app.build.layout === 'releases' && !j.from.release) {
    await ctx.emit({ type: 'log', level: 'warn', step: 'rollback', message: 'there was no previous build to start; start the app again by hand' })
    return { outcome: 'rolled_back', detail }
  }
  try {
    await ctx.emit({ type: 'log', level: 'info', step: 'rollback', message: `starting ${j.from.version} again` })
    await ctx.services.start()
    detail.health = await waitHealthy(ctx, { version: j.from.version, ...(j.from.release ? { release: j.from.release } : {}), step: 'rollback' })
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err)
    throw new UpdateError('ROLLBACK_FAILED', `rolled back to ${j.from.version}, but it does not come up either: ${why}`, {
      step: 'rollback',
      hint: j.backup ? `The data backup is ${j.backup.path} (restore by hand: tar xzf it).` : 'No data backup was taken for this update.',
      cause: err,
    })
  }
  return { outcome: 'rolled_back', detail }
}
