import { rm } from 'node:fs/promises'
import { writeJsonAtomic, type AtomicWriteOptions } from '../../updater/shared/atomic-write'
import { isUpdateError } from '../../updater/shared/errors'
import type { Logger } from '../../updater/shared/log'
import { isReleaseTag } from '../../updater/shared/version'
import { readReleaseCache, type ReleaseCache, type ReleaseCheckError } from '../../updater/shared/release-cache'
import type { Clock } from '../../updater/shared/clock'
import { exhaustedUntil, GitHubError, listReleases, releasesFromTags, repoWebBase, usableReleases, type GitHubClientOptions } from './github-releases'
import type { Channel } from './settings'

/** Release lookups are answered from the cache for this long. */
export const CACHE_TTL_MS = 30 * 60 * 1000
/** After a failed check, automatic checks wait this long (an explicit check does not). */
export const RETRY_AFTER_ERROR_MS = 5 * 60 * 1000

export interface ReleaseQuery {
  repo: string
  channel: Channel
}

/**
 * `auto`: answer from the cache while it is fresh, else ask GitHub (conditionally).
 * `force`: ask GitHub now ("Check for updates"). `cached`: never ask (checks disabled).
 * Rate limits are honoured in every mode.
 */
export type CheckMode = 'auto' | 'force' | 'cached'

export interface ReleaseResult {
  /** The cached answer for this repo and channel, if any. */
  cache: ReleaseCache | undefined
  /** Why the last check failed, when it did (the cache then holds the last good answer). */
  error: Omit<ReleaseCheckError, 'at'> | undefined
  /** When the next request to GitHub may (or will, automatically) happen. */
  nextCheckAt: Date | undefined
}

export interface ReleaseSource {
  get(query: ReleaseQuery, mode: CheckMode): Promise<ReleaseResult>
  /** Forgets the cached answer (the repo or channel changed). */
  invalidate(): Promise<void>
}

export interface ReleaseSourceDeps {
  cacheFile: string
  github: GitHubClientOptions
  /** Web host of the repositories (github.com), for release links. */
  webHost: string
  clock: Clock
  log: Logger
  /** Tag names from `git ls-remote --tags origin`: the fallback when the API is unreachable. */
  remoteTags?: () => Promise<string[]>
  write?: AtomicWriteOptions
}

/**
 * GitHub releases behind a 30-minute on-disk cache (`data/release-cache.json`). Refreshes are
 * conditional (ETag / Last-Modified), honour the rate limit, keep the last good answer when
 * GitHub fails, fall back to `git ls-remote`, and are coalesced: one request in flight at most.
 */
export function createReleaseSource(deps: ReleaseSourceDeps): ReleaseSource {
  const { clock, log } = deps
  // Also kept in memory: there may be no cache file to record a rate limit or failure in.
  let rateLimitedUntil: Date | undefined
  let lastError: { key: string; error: ReleaseCheckError } | undefined
  let inflight: { key: string; promise: Promise<ReleaseResult> } | undefined

  const keyOf = (q: ReleaseQuery) => `${q.repo}\n${q.channel}`
  // A latest release that is not a release tag was not written by us: no cache, so the next check asks afresh (no 304 keeps it).
  const matching = (cache: ReleaseCache | undefined, q: ReleaseQuery) =>
    cache && cache.repo === q.repo && cache.channel === q.channel && typeof cache.checkedAt === 'string' && hasSoundLatest(cache) ? cache : undefined

  // A cache that cannot be written (full disk, read-only data dir) costs requests, not the answer.
  async function save(cache: ReleaseCache): Promise<void> {
    try {
      await writeJsonAtomic(deps.cacheFile, cache, deps.write)
    } catch (err) {
      log.error({ err, file: deps.cacheFile }, 'cannot write the release cache')
    }
  }

  function limitOf(cache: ReleaseCache | undefined): Date | undefined {
    const stored = cache?.rateLimitedUntil ? new Date(cache.rateLimitedUntil) : undefined
    const times = [rateLimitedUntil, stored].filter((d): d is Date => d !== undefined && !Number.isNaN(d.getTime()))
    return times.length ? new Date(Math.max(...times.map((d) => d.getTime()))) : undefined
  }

  function errorOf(cache: ReleaseCache | undefined, key: string): ReleaseCheckError | undefined {
    const candidates = [cache?.lastError, lastError?.key === key ? lastError.error : undefined].filter((e): e is ReleaseCheckError => e !== undefined)
    const newest = candidates.sort((a, b) => Date.parse(b.at) - Date.parse(a.at))[0]
    // An error older than the cached answer was fixed by it.
    if (!newest || (cache && Date.parse(newest.at) < Date.parse(cache.checkedAt))) return undefined
    return newest
  }

  const publicError = (e: ReleaseCheckError | undefined) => (e ? { code: e.code, message: e.message, ...(e.hint ? { hint: e.hint } : {}) } : undefined)

  function rateLimitError(until: Date): ReleaseCheckError {
    return {
      code: 'RATE_LIMITED',
      message: `GitHub rate limit reached; the next check can happen at ${until.toISOString()}`,
      hint: deps.github.token ? 'wait for the reset' : 'wait for the reset, or set GITHUB_TOKEN for a higher limit',
      at: clock.now().toISOString(),
    }
  }

  async function refresh(q: ReleaseQuery, cache: ReleaseCache | undefined): Promise<ReleaseResult> {
    const now = clock.now()
    const webBase = repoWebBase(deps.github.apiUrl, deps.webHost, q.repo)
    const validators = cache?.via === 'api' ? { etag: cache.etag, lastModified: cache.lastModified } : undefined
    log.info({ repo: q.repo, conditional: Boolean(validators?.etag || validators?.lastModified) }, 'checking releases')
    try {
      const res = await listReleases(deps.github, q.repo, validators, now)
      rateLimitedUntil = exhaustedUntil(res.rateLimit, now)
      lastError = undefined
      let next: ReleaseCache
      if (res.kind === 'not-modified' && cache) {
        log.info({ repo: q.repo }, 'releases unchanged')
        next = { ...cache, checkedAt: now.toISOString() }
      } else if (res.kind === 'list') {
        const releases = usableReleases(res.releases, q.channel, webBase)
        log.info({ repo: q.repo, latest: releases[0]?.tag ?? null, usable: releases.length }, 'releases checked')
        next = { repo: q.repo, channel: q.channel, checkedAt: now.toISOString(), latest: releases[0] ?? null, releases, via: 'api' }
        if (res.etag) next.etag = res.etag
        if (res.lastModified) next.lastModified = res.lastModified
      } else {
        // A 304 to a request that carried no validators: GitHub or a proxy misbehaved.
        throw new GitHubError('malformed', 'GitHub answered 304 Not Modified to an unconditional request')
      }
      delete next.lastError
      delete next.rateLimitedUntil
      if (rateLimitedUntil) next.rateLimitedUntil = rateLimitedUntil.toISOString()
      await save(next)
      return { cache: next, error: undefined, nextCheckAt: rateLimitedUntil ?? new Date(now.getTime() + CACHE_TTL_MS) }
    } catch (err) {
      return failed(q, cache, err, now)
    }
  }

  async function failed(q: ReleaseQuery, cache: ReleaseCache | undefined, err: unknown, now: Date): Promise<ReleaseResult> {
    const key = keyOf(q)
    if (err instanceof GitHubError && err.kind === 'rate-limited' && err.opts.until) {
      rateLimitedUntil = err.opts.until
      log.warn({ repo: q.repo, until: rateLimitedUntil.toISOString() }, 'rate limited by github')
      const error = rateLimitError(rateLimitedUntil)
      lastError = { key, error }
      if (cache) await save({ ...cache, rateLimitedUntil: rateLimitedUntil.toISOString(), lastError: error })
      return { cache, error: publicError(error), nextCheckAt: rateLimitedUntil }
    }

    const error = toCheckError(err, now, Boolean(deps.github.token))
    log.warn({ repo: q.repo, err: err instanceof GitHubError ? err.message : err }, 'release check failed')
    lastError = { key, error }
    // The API is down and nothing good from it is cached: the tags on origin still say what exists.
    if (err instanceof GitHubError && err.kind === 'unreachable' && cache?.via !== 'api' && deps.remoteTags) {
      try {
        const tags = await deps.remoteTags()
        const releases = releasesFromTags(tags, q.channel, repoWebBase(deps.github.apiUrl, deps.webHost, q.repo))
        const next: ReleaseCache = {
          repo: q.repo,
          channel: q.channel,
          checkedAt: now.toISOString(),
          latest: releases[0] ?? null,
          releases,
          via: 'git',
          lastError: { ...error, message: `${error.message}; release list taken from git ls-remote (no release notes)` },
        }
        log.info({ repo: q.repo, latest: next.latest?.tag ?? null }, 'listed release tags with git ls-remote')
        await save(next)
        lastError = { key, error: next.lastError! }
        return { cache: next, error: publicError(next.lastError), nextCheckAt: new Date(now.getTime() + CACHE_TTL_MS) }
      } catch (gitErr) {
        log.warn({ err: gitErr instanceof Error ? gitErr.message : gitErr }, 'git ls-remote fallback failed')
      }
    }
    if (cache) await save({ ...cache, lastError: error })
    return { cache, error: publicError(error), nextCheckAt: new Date(now.getTime() + RETRY_AFTER_ERROR_MS) }
  }

  return {
    async get(q, mode) {
      const key = keyOf(q)
      const now = clock.now()
      const cache = matching(await readReleaseCache(deps.cacheFile), q)
      const error = errorOf(cache, key)
      if (mode === 'cached') return { cache, error: publicError(error), nextCheckAt: undefined }

      const limit = limitOf(cache)
      const later = (d: Date) => (limit && limit > d ? limit : d)
      if (mode === 'auto') {
        if (cache && now.getTime() - Date.parse(cache.checkedAt) < CACHE_TTL_MS) {
          return { cache, error: publicError(error), nextCheckAt: later(new Date(Date.parse(cache.checkedAt) + CACHE_TTL_MS)) }
        }
        // A rate limit has its own time (below); other failures back off for a few minutes.
        const errorAt = error && error.code !== 'RATE_LIMITED' ? Date.parse(error.at) : undefined
        if (errorAt !== undefined && now.getTime() - errorAt < RETRY_AFTER_ERROR_MS) {
          return { cache, error: publicError(error), nextCheckAt: later(new Date(errorAt + RETRY_AFTER_ERROR_MS)) }
        }
      }
      if (limit && limit > now) {
        return { cache, error: publicError(error?.code === 'RATE_LIMITED' ? error : rateLimitError(limit)), nextCheckAt: limit }
      }

      // Coalesce: whoever asks while a request is in flight gets its answer.
      if (inflight?.key === key) return inflight.promise
      if (inflight) await inflight.promise.catch(() => {})
      if (inflight?.key === key) return inflight.promise
      const promise = refresh(q, cache).finally(() => {
        if (inflight?.promise === promise) inflight = undefined
      })
      inflight = { key, promise }
      return promise
    },

    async invalidate() {
      lastError = undefined
      await rm(deps.cacheFile, { force: true })
    },
  }
}

function hasSoundLatest(cache: ReleaseCache): boolean {
  const latest: unknown = cache.latest
  return latest === null || (typeof latest === 'object' && typeof (latest as { tag?: unknown }).tag === 'string' && isReleaseTag((latest as { tag: string }).tag))
}

function toCheckError(err: unknown, now: Date, hasToken: boolean): ReleaseCheckError {
  const at = now.toISOString()
  if (isUpdateError(err)) return { ...err.toJSON(), at }
  if (!(err instanceof GitHubError)) {
    return { code: 'UPSTREAM_ERROR', message: `release check failed: ${err instanceof Error ? err.message : String(err)}`, at }
  }
  switch (err.kind) {
    case 'not-found':
      return {
        code: 'BAD_REPO',
        message: err.message,
        hint: hasToken ? 'check the repository name (UPDATE_REPO or the setting) and that GITHUB_TOKEN can read it' : 'check the repository name; a private repository needs GITHUB_TOKEN',
        at,
      }
    case 'unauthorized':
      return { code: 'UPSTREAM_ERROR', message: err.message, hint: 'replace GITHUB_TOKEN with a valid token, or unset it for public repositories', at }
    case 'unreachable':
      return { code: 'UPSTREAM_ERROR', message: err.message, hint: 'the last known release list is kept; Upkeep tries again later', at }
    default:
      return { code: 'UPSTREAM_ERROR', message: err.message, at }
  }
}
