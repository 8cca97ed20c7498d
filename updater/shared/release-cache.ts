import { readDataFile } from './data-file'

/** A release as the API and the UI show it; `version` is the tag without its `v`. */
export interface ReleaseInfo {
  version: string
  tag: string
  name: string
  notesMarkdown: string
  url: string
  /** ISO time; empty when unknown (releases listed by `git ls-remote`). */
  publishedAt: string
  prerelease: boolean
}

/** A failed check, kept beside the last good result (see `ReleaseCache.lastError`). */
export interface ReleaseCheckError {
  /** An `UpdateErrorCode`: `RATE_LIMITED`, `UPSTREAM_ERROR`, `BAD_REPO`. */
  code: string
  message: string
  hint?: string
  /** ISO time of the failed attempt. */
  at: string
}

/**
 * `data/release-cache.json`: the last answer of the release source, written by the server
 * (atomically) and read by the updater (`upkeep update` without a version takes `latest`).
 * Fields may be added; none is renamed.
 */
export interface ReleaseCache {
  /** `owner/name` the releases came from. */
  repo: string
  channel: 'stable' | 'prerelease'
  /** ISO time of the last successful check (a 304 counts). */
  checkedAt: string
  etag?: string
  lastModified?: string
  /** The highest release for the channel, or null when the repo has none. */
  latest: ReleaseInfo | null
  /** Every usable release, highest first. */
  releases: ReleaseInfo[]
  /** How the list was obtained: the GitHub API, or `git ls-remote --tags` when the API was unreachable. */
  via: 'api' | 'git'
  /** ISO time before which GitHub must not be asked again (rate limit reset or `retry-after`). */
  rateLimitedUntil?: string
  /** The last check's failure when it kept this (older) result; removed by the next success. */
  lastError?: ReleaseCheckError
}

/** The cached release list, or undefined when there is none or it cannot be read. */
export async function readReleaseCache(file: string): Promise<ReleaseCache | undefined> {
  try {
    // The root updater reads it too: never through a symlink or from a FIFO the server planted.
    const cache = JSON.parse((await readDataFile(file, { maxBytes: 16 << 20 })) ?? '') as ReleaseCache
    return typeof cache === 'object' && cache && Array.isArray(cache.releases) ? cache : undefined
  } catch {
    return undefined
  }
}
