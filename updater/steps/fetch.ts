import { UpdateError } from '../shared/errors'
import { gitMessage } from '../adapters/git'
import type { Step } from '../context'

// A tag that points elsewhere now than when the update was planned is refused, never built.
export const fetch: Step = {
  name: 'fetch',
  async run(ctx) {
    const { j, git } = ctx
    try {
      await git.fetchTags()
    } catch (err) {
      const text = (err as Error).message
      if (/would clobber existing tag/.test(text)) {
        throw new UpdateError('TAG_MOVED', `tag ${j.to.tag} on origin differs from the local tag of that name`, {
          step: 'fetch',
          hint: `If the release was re-tagged on purpose, drop the local tag and retry: git -C ${ctx.paths.appDir} tag -d ${j.to.tag}`,
          cause: err,
        })
      }
      throw new UpdateError('FETCH_FAILED', `git fetch failed: ${gitMessage(err)}`, { step: 'fetch', hint: 'Check the network and the origin remote.', cause: err })
    }
    const local = await git.tagCommit(j.to.tag)
    if (!local) throw new UpdateError('TAG_NOT_FOUND', `tag ${j.to.tag} did not arrive with git fetch`, { step: 'fetch' })
    if (j.to.commit && local !== j.to.commit) {
      throw new UpdateError('TAG_MOVED', `tag ${j.to.tag} points to ${local.slice(0, 12)} now, not to ${j.to.commit.slice(0, 12)} as when the update started`, {
        step: 'fetch',
        hint: 'A release tag must never move; start the update again to take the tag as it is now.',
      })
    }
    j.to.commit = local
    return { commit: local }
  },
}
