import { mkdir, rename, rm, stat } from 'node:fs/promises'
import path from 'node:path'
import { UpdateError } from '../shared/errors'
import { fsyncDir } from '../shared/atomic-write'
import { swapSymlink } from '../adapters/fs'
import type { Step, StepContext } from '../context'

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  )
}

/**
 * In-place: the previous build's entries that the new build replaces go to `.upkeep/previous`,
 * the checkout moves to the tag, the new build's entries move in from staging. Each move is a
 * rename(2) inside the checkout and skipped when already done, so recovery can repeat it.
 */
async function switchInPlace(ctx: StepContext): Promise<void> {
  const { j, paths, git } = ctx
  const outputs = j.to.outputs ?? []
  if (j.movedAside === undefined) {
    j.movedAside = []
    for (const name of outputs) if (await exists(path.join(paths.appDir, name))) j.movedAside.push(name)
    await ctx.save()
  }
  await rm(paths.previousOutputs, { recursive: true, force: true })
  await mkdir(paths.previousOutputs, { recursive: true })
  for (const name of j.movedAside) {
    const from = path.join(paths.appDir, name)
    if (await exists(from)) await rename(from, path.join(paths.previousOutputs, name))
  }
  if ((await git.headCommit()) !== j.to.commit) await git.checkoutDetached(j.to.commit!)
  for (const name of outputs) {
    const from = path.join(j.to.staging!, name)
    if (await exists(from)) await rename(from, path.join(paths.appDir, name))
  }
  await fsyncDir(paths.appDir)
}

/** Undoes switchInPlace, or the part of it that happened: the new build's entries out, the previous ones back. */
export async function unswitchInPlace(ctx: StepContext): Promise<void> {
  const { j, paths } = ctx
  // Journaled before the first move: without it, nothing in the checkout was touched.
  if (j.movedAside === undefined) return
  const failed = path.join(paths.upkeepDir, 'failed', j.updateId)
  for (const name of j.to.outputs ?? []) {
    // Moved aside is journaled before the move: not in previous/ yet means the checkout still has the old one.
    if (j.movedAside.includes(name) && !(await exists(path.join(paths.previousOutputs, name)))) continue
    const at = path.join(paths.appDir, name)
    if (await exists(at)) {
      await mkdir(failed, { recursive: true })
      await rename(at, path.join(failed, name))
    }
  }
  for (const name of j.movedAside) {
    const kept = path.join(paths.previousOutputs, name)
    if (await exists(kept)) await rename(kept, path.join(paths.appDir, name))
  }
  await rm(failed, { recursive: true, force: true })
  await fsyncDir(paths.appDir)
}

// The live build is a symlink: one rename(2) makes the new release live, and the previous one
// stays as server.bak for rollback. The checkout follows the release (detached at its tag). An
// app that runs from its checkout gets the new build's entries swapped in instead.
export const switchStep: Step = {
  name: 'switch',
  async run(ctx) {
    const { j, paths, git } = ctx
    if (!j.to.commit || (ctx.app.build.layout === 'releases' && !j.to.release)) throw new UpdateError('SWITCH_FAILED', 'nothing was built to switch to', { step: 'switch' })
    try {
      if (ctx.app.build.layout === 'in-place') {
        await switchInPlace(ctx)
        return { outputs: j.to.outputs ?? [], movedAside: j.movedAside ?? [] }
      }
      if (j.from.release) await swapSymlink(paths.serverBak, j.from.release)
      await swapSymlink(paths.current, j.to.release!)
      if ((await git.headCommit()) !== j.to.commit) await git.checkoutDetached(j.to.commit)
    } catch (err) {
      throw new UpdateError('SWITCH_FAILED', `cannot switch to ${j.to.tag}: ${(err as Error).message}`, { step: 'switch', cause: err })
    }
    return { current: j.to.release, serverBak: j.from.release ?? null }
  },
}
