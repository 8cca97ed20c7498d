import { UpdateError } from '../../updater/shared/errors'
import { readReleaseCache } from '../../updater/shared/release-cache'
import { isReleaseTag, tagForVersion } from '../../updater/shared/version'

/** Longer is not a version anyone released; refused whole, never shortened into another one. */
export const MAX_VERSION_LENGTH = 100

/** The tag for the `version` of `POST /api/updates/apply` (`1.2.3` or `v1.2.3`); BAD_VERSION otherwise. */
export function requestedTag(version: unknown): string {
  if (typeof version !== 'string') throw new UpdateError('BAD_VERSION', 'version must be a string such as "1.2.3"')
  if (version.length > MAX_VERSION_LENGTH) throw new UpdateError('BAD_VERSION', `version is longer than ${MAX_VERSION_LENGTH} characters`, { hint: 'Versions look like 1.2.3 or v1.2.3.' })
  try {
    return tagForVersion(version)
  } catch {
    throw new UpdateError('BAD_VERSION', `${JSON.stringify(version.slice(0, 40))} is not a release version`, { hint: 'Versions look like 1.2.3 or v1.2.3.' })
  }
}

/**
 * The latest release the server knows of (`data/release-cache.json`), to request when no version
 * was asked for; undefined without one (the updater then takes origin's highest tag). The cache
 * is a file in data/: a `latest.tag` that is not a release tag is refused here, not passed on.
 */
export async function latestCachedTag(cacheFile: string): Promise<string | undefined> {
  const tag: unknown = (await readReleaseCache(cacheFile))?.latest?.tag
  if (tag === undefined || tag === null) return undefined
  if (typeof tag === 'string' && isReleaseTag(tag)) return tag
  throw new UpdateError('NO_RELEASE', `the release cache names ${JSON.stringify(String(tag).slice(0, 60))} as the latest release, which is not a release tag; the cache is damaged`, {
    hint: 'Check for updates (POST /api/updates/check, or `upkeep check`) to rewrite it, or ask for a version: {"version": "1.2.3"}',
  })
}
