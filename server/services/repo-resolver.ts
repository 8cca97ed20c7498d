import { UpdateError } from '../../updater/shared/errors'
import { parseRepoUrl, quoteInput, redactUrl, REPO_HINT, verifyRepo } from '../../updater/shared/repo'
import type { Clock } from '../../updater/shared/clock'
import type { OriginGit } from './origin-git'

/** Where the repository name came from; `definition`: an app's definition (apps other than Upkeep). */
export type RepoOrigin = 'env' | 'setting' | 'origin' | 'definition'

/** Where releases come from, and which of the three places said so. */
export interface RepoSource {
  repo: string
  from: RepoOrigin
}

export interface RepoResolverDeps {
  /** `UPDATE_REPO` (already validated by the config, checked again here). */
  envRepo: string | undefined
  git: Pick<OriginGit, 'originUrl'>
  /** Hosts whose clone URLs count as GitHub's (`webHostsFor(GITHUB_API_URL)`). */
  hosts: readonly string[]
  clock: Clock
}

const ORIGIN_TTL_MS = 60_000

export interface RepoResolver {
  /** `UPDATE_REPO` → stored setting → `git remote get-url origin`; throws `BAD_REPO` with a hint. */
  resolve(settingRepo: string | null): Promise<RepoSource>
}

export function createRepoResolver(deps: RepoResolverDeps): RepoResolver {
  // The origin URL rarely changes; asking git on every poll of the UI is wasted work.
  let origin: { url: string | undefined; at: number } | undefined
  const originUrl = async () => {
    const now = deps.clock.now().getTime()
    if (!origin || now - origin.at > ORIGIN_TTL_MS) origin = { url: await deps.git.originUrl(), at: now }
    return origin.url
  }

  return {
    async resolve(settingRepo) {
      if (deps.envRepo !== undefined) {
        verifyRepo(deps.envRepo, 'UPDATE_REPO')
        return { repo: deps.envRepo, from: 'env' }
      }
      if (settingRepo !== null) {
        // A hand-edited settings.json is reported, never used unvalidated nor skipped silently.
        verifyRepo(settingRepo, 'the updateRepo setting')
        return { repo: settingRepo, from: 'setting' }
      }
      const url = await originUrl()
      if (url === undefined) {
        throw new UpdateError('BAD_REPO', 'no repository to check: UPDATE_REPO and the updateRepo setting are unset and the checkout has no origin remote', {
          hint: 'set UPDATE_REPO=owner/name or the repository in Settings → Software Updates',
        })
      }
      const ref = parseRepoUrl(url, deps.hosts)
      if (!ref) {
        throw new UpdateError('BAD_REPO', `the origin remote ${quoteInput(redactUrl(url))} is not a repository on ${deps.hosts[0]}`, {
          hint: `set UPDATE_REPO=owner/name or the repository in Settings → Software Updates (${REPO_HINT})`,
        })
      }
      return { repo: `${ref.owner}/${ref.name}`, from: 'origin' }
    },
  }
}
