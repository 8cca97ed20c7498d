import { UpdateError } from '../shared/errors'
import { swapSymlink } from '../adapters/fs'
import type { Step } from '../context'

// The live build is a symlink: one rename(2) makes the new release live, and the previous
// one stays as server.bak for rollback. The checkout follows the release (detached at its tag).
export const switchStep: Step = {
  name: 'switch',
  async run(ctx) {
    const { j, paths, git } = ctx
    if (!j.to.release || !j.to.commit) throw new UpdateError('SWITCH_FAILED', 'nothing was built to switch to', { step: 'switch' })
    try {
      if (j.from.release) await swapSymlink(paths.serverBak, j.from.release, ctx.runAs)
      await swapSymlink(paths.current, j.to.release, ctx.runAs)
      if ((await git.headCommit()) !== j.to.commit) await git.checkoutDetached(j.to.commit)
    } catch (err) {
      throw new UpdateError('SWITCH_FAILED', `cannot switch to ${j.to.tag}: ${(err as Error).message}`, { step: 'switch', cause: err })
    }
    return { current: j.to.release, serverBak: j.from.release ?? null }
  },
}
