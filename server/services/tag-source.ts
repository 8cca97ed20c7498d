import { writeJsonAtomic, type AtomicWriteOptions } from '../../updater/shared/atomic-write'
import type { Logger } from '../../updater/shared/log'
import { readReleaseCache, type ReleaseCache } from '../../updater/shared/release-cache'
import type { Clock } from '../../updater/shared/clock'
import { releasesFromTags } from './github-releases'
import { CACHE_TTL_MS, RETRY_AFTER_ERROR_MS, type ReleaseSource } from './release-source'

/**
 * Releases as the `v*` tags of a git remote (apps whose definition says `{"git": "origin"}`):
 * no notes, no dates; the same 30-minute on-disk cache as GitHub's list, and one listing at a time.
 */
export function createTagSource(deps: { cacheFile: string; remoteTags: () => Promise<string[]>; webBase: string; clock: Clock; log: Logger; write?: AtomicWriteOptions }): ReleaseSource {
  let inflight: Promise<Awaited<ReturnType<ReleaseSource['get']>>> | undefined
  let lastError: { code: string; message: string; hint?: string; at: string } | undefined
  return {
    async get(q, mode) {
      const now = deps.clock.now()
      const stored = await readReleaseCache(deps.cacheFile)
      const cache = stored && stored.repo === q.repo && stored.channel === q.channel ? stored : undefined
      const error = lastError && (!cache || Date.parse(lastError.at) > Date.parse(cache.checkedAt)) ? lastError : undefined
      const publicError = error ? { code: error.code, message: error.message, ...(error.hint ? { hint: error.hint } : {}) } : undefined
      if (mode === 'cached') return { cache, error: publicError, nextCheckAt: undefined }
      if (mode === 'auto' && cache && now.getTime() - Date.parse(cache.checkedAt) < CACHE_TTL_MS) {
        return { cache, error: publicError, nextCheckAt: new Date(Date.parse(cache.checkedAt) + CACHE_TTL_MS) }
      }
      if (mode === 'auto' && error && now.getTime() - Date.parse(error.at) < RETRY_AFTER_ERROR_MS) {
        return { cache, error: publicError, nextCheckAt: new Date(Date.parse(error.at) + RETRY_AFTER_ERROR_MS) }
      }
      inflight ??= (async () => {
        try {
          const releases = releasesFromTags(await deps.remoteTags(), q.channel, deps.webBase)
          const next: ReleaseCache = { repo: q.repo, channel: q.channel, checkedAt: now.toISOString(), latest: releases[0] ?? null, releases, via: 'git' }
          lastError = undefined
          await writeJsonAtomic(deps.cacheFile, next, deps.write).catch((err: Error) => deps.log.error({ err }, 'cannot write the release cache'))
          return { cache: next, error: undefined, nextCheckAt: new Date(now.getTime() + CACHE_TTL_MS) }
        } catch (err) {
          lastError = { code: 'UPSTREAM_ERROR', message: err instanceof Error ? err.message : String(err), hint: 'Check that the remote is reachable from this server: git ls-remote --tags URL', at: now.toISOString() }
          deps.log.warn({ repo: q.repo, err: lastError.message }, 'listing release tags failed')
          return { cache, error: { code: lastError.code, message: lastError.message, hint: lastError.hint! }, nextCheckAt: new Date(now.getTime() + RETRY_AFTER_ERROR_MS) }
        } finally {
          inflight = undefined
        }
      })()
      return inflight
    },
    async invalidate() {
      lastError = undefined
    },
  }
}
