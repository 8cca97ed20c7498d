import { readdir, rm } from 'node:fs/promises'
import path from 'node:path'
import { readLinkTarget } from '../adapters/fs'
import { pruneBackups } from '../backup-archive'
import type { Step, StepContext } from '../context'

/** Removes builds that are neither live nor server.bak, and anything left in staging. */
export async function pruneReleases(ctx: Pick<StepContext, 'paths' | 'git'>): Promise<string[]> {
  const keep = new Set([await readLinkTarget(ctx.paths.current), await readLinkTarget(ctx.paths.serverBak)])
  const removed: string[] = []
  for (const name of await readdir(ctx.paths.releases).catch(() => [] as string[])) {
    const dir = path.join(ctx.paths.releases, name)
    if (keep.has(dir)) continue
    await rm(dir, { recursive: true, force: true })
    removed.push(name)
  }
  for (const name of await readdir(ctx.paths.stagingRoot).catch(() => [] as string[])) {
    await rm(path.join(ctx.paths.stagingRoot, name), { recursive: true, force: true })
  }
  await ctx.git.worktreeRemove(path.join(ctx.paths.stagingRoot, '.none')).catch(() => {})
  return removed
}

// The point of no return: the new version serves; only bookkeeping is left.
// (The history entry and the journal's end are written by run.ts right after.)
export const commit: Step = {
  name: 'commit',
  async run(ctx) {
    const releases = await pruneReleases(ctx).catch((err: Error) => {
      ctx.log.warn({ err }, 'could not prune old builds')
      return []
    })
    // In place, the previous build's entries were kept only for a rollback of this update.
    if (ctx.app.build.layout === 'in-place') await rm(ctx.paths.previousOutputs, { recursive: true, force: true }).catch(() => {})
    const backups = await pruneBackups(ctx.paths.backupDir, ctx.app.name, ctx.app.data.keep).catch(() => [])
    // Partial downloads of other releases were kept only for a resume of their own update.
    await rm(ctx.paths.downloads, { recursive: true, force: true }).catch(() => {})
    return { prunedReleases: releases, prunedBackups: backups.length }
  },
}
