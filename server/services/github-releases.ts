import semver from 'semver'
import type { ReleaseInfo } from '../../updater/shared/release-cache'
import { exhaustedUntil, rateLimitedUntil, readRateLimit, type RateLimit } from '../../updater/shared/github-rate-limit'
import { verifyRepo } from '../../updater/shared/repo'
import { isReleaseTag } from '../../updater/shared/version'
import type { Channel } from './settings'

// The GitHub Releases API: https://docs.github.com/en/rest/releases/releases#list-releases
// Rate limits are read by updater/shared/github-rate-limit.ts (the artifact downloads share them).

export { exhaustedUntil, readRateLimit, type RateLimit }

export const GITHUB_API_VERSION = '2022-11-28'
/** One page; releases are listed newest first, so the highest version is on it in practice. */
export const RELEASES_PER_PAGE = 100
const MAX_BODY_BYTES = 20 * 1024 * 1024

export interface GitHubClientOptions {
  apiUrl: string
  token?: string
  userAgent: string
  fetch: typeof fetch
  timeoutMs?: number
}

export interface Validators {
  etag?: string
  lastModified?: string
}

export type ListResult =
  | { kind: 'list'; releases: unknown; etag?: string; lastModified?: string; rateLimit: RateLimit }
  | { kind: 'not-modified'; rateLimit: RateLimit }

export type GitHubErrorKind = 'rate-limited' | 'unreachable' | 'not-found' | 'unauthorized' | 'forbidden' | 'malformed' | 'unexpected'

export class GitHubError extends Error {
  override name = 'GitHubError'
  constructor(
    readonly kind: GitHubErrorKind,
    message: string,
    readonly opts: { status?: number; until?: Date; cause?: unknown } = {},
  ) {
    super(message, { cause: opts.cause })
  }
}

/**
 * One request for a repository's releases, conditional when `validators` are given.
 * Throws `GitHubError`: `rate-limited` (with `until`), `unreachable` (network, timeout, 5xx), …
 */
export async function listReleases(opts: GitHubClientOptions, repo: string, validators: Validators | undefined, now: Date): Promise<ListResult> {
  const { owner, name } = verifyRepo(repo)
  const url = `${opts.apiUrl}/repos/${encodeURIComponent(owner)}/${encodeURIComponent(name)}/releases?per_page=${RELEASES_PER_PAGE}`
  const headers: Record<string, string> = {
    Accept: 'application/vnd.github+json',
    'X-GitHub-Api-Version': GITHUB_API_VERSION,
    'User-Agent': opts.userAgent,
  }
  if (opts.token) headers.Authorization = `Bearer ${opts.token}`
  if (validators?.etag) headers['If-None-Match'] = validators.etag
  if (validators?.lastModified) headers['If-Modified-Since'] = validators.lastModified

  let res: Response
  try {
    res = await opts.fetch(url, { headers, redirect: 'follow', signal: AbortSignal.timeout(opts.timeoutMs ?? 15_000) })
  } catch (err) {
    const why = err instanceof Error && err.name === 'TimeoutError' ? 'timed out' : describeNetworkError(err)
    throw new GitHubError('unreachable', `cannot reach ${new URL(opts.apiUrl).host}: ${why}`, { cause: err })
  }
  const rateLimit = readRateLimit(res.headers)

  if (res.status === 304) {
    discard(res)
    return { kind: 'not-modified', rateLimit }
  }
  if (res.status === 403 || res.status === 429) {
    const until = rateLimitedUntil(res, rateLimit, now)
    const message = await errorMessage(res)
    if (until) throw new GitHubError('rate-limited', `GitHub rate limit reached${message ? ` (${message})` : ''}`, { status: res.status, until })
    throw new GitHubError('forbidden', `GitHub refused access to ${repo} (${res.status}${message ? `: ${message}` : ''})`, { status: res.status })
  }
  if (res.status === 401) {
    discard(res)
    throw new GitHubError('unauthorized', 'GitHub rejected GITHUB_TOKEN (401 Bad credentials)', { status: 401 })
  }
  if (res.status === 404) {
    discard(res)
    throw new GitHubError('not-found', `repository ${repo} not found on ${new URL(opts.apiUrl).host}`, { status: 404 })
  }
  if (res.status >= 500) {
    discard(res)
    throw new GitHubError('unreachable', `GitHub answered ${res.status} ${res.statusText}`.trim(), { status: res.status })
  }
  if (res.status !== 200) {
    discard(res)
    throw new GitHubError('unexpected', `GitHub answered ${res.status} ${res.statusText}`.trim(), { status: res.status })
  }

  const text = await res.text()
  if (text.length > MAX_BODY_BYTES) throw new GitHubError('malformed', `GitHub's release list is larger than ${MAX_BODY_BYTES} bytes`)
  let releases: unknown
  try {
    releases = JSON.parse(text)
  } catch (err) {
    throw new GitHubError('malformed', 'GitHub answered with something that is not JSON', { cause: err })
  }
  if (!Array.isArray(releases)) throw new GitHubError('malformed', 'GitHub answered with something that is not a release list')
  return {
    kind: 'list',
    releases,
    etag: res.headers.get('etag') ?? undefined,
    lastModified: res.headers.get('last-modified') ?? undefined,
    rateLimit,
  }
}

/** Lets go of a body we will not read (not awaited: a cancel may never settle on some streams). */
function discard(res: Response): void {
  res.body?.cancel().catch(() => {})
}

async function errorMessage(res: Response): Promise<string | undefined> {
  try {
    const body = (await res.json()) as { message?: unknown }
    return typeof body?.message === 'string' ? body.message.slice(0, 200) : undefined
  } catch {
    return undefined
  }
}

function describeNetworkError(err: unknown): string {
  // fetch says only "fetch failed"; the reason (ECONNREFUSED, ENOTFOUND…) is in its cause.
  const cause = (err as { cause?: { code?: string; message?: string } })?.cause
  if (cause?.code) return cause.code
  if (cause?.message) return cause.message
  return err instanceof Error ? err.message : String(err)
}

/** Stable releases only, unless the channel is `prerelease`. Tags like v1.2.0-rc.1 count as prereleases. */
function isOnChannel(prerelease: boolean, channel: Channel): boolean {
  return channel === 'prerelease' || !prerelease
}

function byVersionDesc(a: ReleaseInfo, b: ReleaseInfo): number {
  return semver.rcompare(a.version, b.version)
}

/**
 * GitHub's release list → the releases Upkeep can install, highest version first: no drafts,
 * no prereleases on the stable channel, only `v*` semver tags. Items that are not shaped like
 * a release are skipped. Pure.
 */
export function usableReleases(raw: unknown, channel: Channel, webBase: string): ReleaseInfo[] {
  if (!Array.isArray(raw)) return []
  const seen = new Set<string>()
  const out: ReleaseInfo[] = []
  for (const item of raw as unknown[]) {
    if (typeof item !== 'object' || item === null) continue
    const r = item as Record<string, unknown>
    if (typeof r.tag_name !== 'string' || typeof r.draft !== 'boolean' || typeof r.prerelease !== 'boolean') continue
    if (r.draft || !isReleaseTag(r.tag_name) || seen.has(r.tag_name)) continue
    const version = r.tag_name.slice(1)
    const prerelease = r.prerelease || semver.prerelease(version) !== null
    if (!isOnChannel(prerelease, channel)) continue
    seen.add(r.tag_name)
    out.push({
      version,
      tag: r.tag_name,
      name: typeof r.name === 'string' && r.name.trim() ? r.name : r.tag_name,
      notesMarkdown: typeof r.body === 'string' ? r.body : '',
      url: typeof r.html_url === 'string' && /^https?:\/\//.test(r.html_url) ? r.html_url : tagUrl(webBase, r.tag_name),
      publishedAt: typeof r.published_at === 'string' ? r.published_at : typeof r.created_at === 'string' ? r.created_at : '',
      prerelease,
    })
  }
  return out.sort(byVersionDesc)
}

/** Tags from `git ls-remote` → releases without notes, highest first. Pure. */
export function releasesFromTags(tags: readonly string[], channel: Channel, webBase: string): ReleaseInfo[] {
  const seen = new Set<string>()
  const out: ReleaseInfo[] = []
  for (const tag of tags) {
    if (!isReleaseTag(tag) || seen.has(tag)) continue
    seen.add(tag)
    const version = tag.slice(1)
    const prerelease = semver.prerelease(version) !== null
    if (!isOnChannel(prerelease, channel)) continue
    out.push({ version, tag, name: tag, notesMarkdown: '', url: tagUrl(webBase, tag), publishedAt: '', prerelease })
  }
  return out.sort(byVersionDesc)
}

/** `https://github.com/owner/name` for an API root and repository. */
export function repoWebBase(apiUrl: string, webHost: string, repo: string): string {
  return `${new URL(apiUrl).protocol}//${webHost}/${repo}`
}

function tagUrl(webBase: string, tag: string): string {
  return `${webBase}/releases/tag/${encodeURIComponent(tag)}`
}
