import { UpdateError } from '../shared/errors'
import { exhaustedUntil, rateLimitedUntil, readRateLimit } from '../shared/github-rate-limit'
import { verifyRepo } from '../shared/repo'
import { artifactUrlProblem } from '../shared/artifact-url'
import { RateLimitedError, type DownloadSource } from './download'

/**
 * Where an app's prebuilt releases are, from its definition: the assets of the GitHub release of
 * the tag, or an https URL pattern with `{version}` (and/or `{tag}`) in it, e.g.
 * `https://downloads.example.com/widget/{version}/widget-{version}.tar.gz`. SHA256SUMS and
 * SHA256SUMS.sig are expected beside the tarball.
 */
export type ArtifactSource = { github: string } | { url: string }

export interface ReleaseArtifacts {
  /** The tarball's file name, as SHA256SUMS must list it. */
  name: string
  tarball: DownloadSource
  sums: DownloadSource
  signature: DownloadSource
  /** Set when GitHub's answer used up the rate limit: no request to it before then. */
  rateLimitedUntil?: Date
}

export interface ResolveOptions {
  /** The file name prefix: releases publish `<app>-<version>.tar.gz`. */
  app: string
  version: string
  tag: string
  fetch: typeof fetch
  now: () => Date
  githubApiUrl?: string
  githubToken?: string
  /** The release checks' stored rate-limit time (`rateLimitedUntil` of release-cache.json): no request before it. */
  notBefore?: Date
  userAgent?: string
}

const SUMS = 'SHA256SUMS'
const SIG = 'SHA256SUMS.sig'

function badSource(message: string): UpdateError {
  return new UpdateError('BAD_CONFIG', message, {
    hint: 'artifacts is { "github": "owner/name" } or { "url": "https://host/path/{version}/app-{version}.tar.gz" }',
  })
}

/** Checks an artifact source from an app definition. Pure. */
export function verifyArtifactSource(value: unknown): ArtifactSource {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw badSource('artifacts must be an object')
  const v = value as Record<string, unknown>
  const keys = Object.keys(v)
  if (keys.length !== 1 || !['github', 'url'].includes(keys[0]!)) throw badSource('artifacts must have exactly one of "github" or "url"')
  if ('github' in v) {
    if (typeof v.github !== 'string') throw badSource('artifacts.github must be "owner/name"')
    verifyRepo(v.github, 'artifacts.github')
    return { github: v.github }
  }
  const problem = artifactUrlProblem(v.url)
  if (problem) throw badSource(`artifacts.url ${problem}`)
  return { url: v.url as string }
}

/** The three URLs of a release from a URL pattern (SHA256SUMS and its .sig beside the tarball). Pure. */
export function artifactsFromPattern(pattern: string, version: string, tag: string): ReleaseArtifacts {
  const tarball = new URL(pattern.replaceAll('{version}', encodeURIComponent(version)).replaceAll('{tag}', encodeURIComponent(tag)))
  const name = decodeURIComponent(tarball.pathname.split('/').at(-1)!)
  if (!/^[A-Za-z0-9][A-Za-z0-9._+-]*$/.test(name)) throw badSource(`the tarball's file name ${JSON.stringify(name)} is not a plain file name`)
  return {
    name,
    tarball: { url: tarball.href, name },
    sums: { url: new URL(SUMS, tarball).href, name: SUMS },
    signature: { url: new URL(SIG, tarball).href, name: SIG },
  }
}

/** The release's artifacts: from the pattern, or the assets of the GitHub release of `tag`. */
export async function resolveArtifacts(source: ArtifactSource, o: ResolveOptions): Promise<ReleaseArtifacts> {
  if ('url' in source) return artifactsFromPattern(source.url, o.version, o.tag)
  return githubReleaseAssets(source.github, o)
}

interface Asset {
  name: string
  url: string
  state?: string
}

// https://docs.github.com/en/rest/releases/releases#get-a-release-by-tag-name and
// https://docs.github.com/en/rest/releases/assets#get-a-release-asset (Accept: application/octet-stream).
async function githubReleaseAssets(repo: string, o: ResolveOptions): Promise<ReleaseArtifacts> {
  const { owner, name: repoName } = verifyRepo(repo, 'artifacts.github')
  const now = o.now()
  if (o.notBefore && o.notBefore > now) {
    throw new RateLimitedError(o.notBefore, `GitHub rate limit reached; no request before ${o.notBefore.toISOString()}`, {
      hint: `try the update again after ${o.notBefore.toISOString()}; a GITHUB_TOKEN raises GitHub's limit`,
    })
  }
  const api = (o.githubApiUrl ?? 'https://api.github.com').replace(/\/+$/, '')
  const url = `${api}/repos/${encodeURIComponent(owner)}/${encodeURIComponent(repoName)}/releases/tags/${encodeURIComponent(o.tag)}`
  const headers: Record<string, string> = { Accept: 'application/vnd.github+json', 'X-GitHub-Api-Version': '2022-11-28', 'User-Agent': o.userAgent ?? 'upkeep' }
  if (o.githubToken) headers.Authorization = `Bearer ${o.githubToken}`
  let res: Response
  try {
    res = await o.fetch(url, { headers, signal: AbortSignal.timeout(15_000) })
  } catch (err) {
    throw new UpdateError('DOWNLOAD_FAILED', `cannot reach ${new URL(api).host}: ${(err as Error).message}`, { hint: 'check the network, then try again', cause: err })
  }
  const rate = readRateLimit(res.headers)
  if (res.status === 403 || res.status === 429) {
    const until = rateLimitedUntil(res, rate, now)
    if (until) throw new RateLimitedError(until, `GitHub rate limit reached; no request before ${until.toISOString()}`, { hint: `try the update again after ${until.toISOString()}; a GITHUB_TOKEN raises GitHub's limit` })
  }
  if (res.status === 404) {
    throw new UpdateError('DOWNLOAD_FAILED', `${repo} has no GitHub release for tag ${o.tag}`, {
      hint: o.githubToken ? 'publish a release for the tag with its artifacts' : 'publish a release for the tag; for a private repository set GITHUB_TOKEN',
    })
  }
  if (res.status !== 200) {
    void res.body?.cancel().catch(() => {})
    throw new UpdateError('DOWNLOAD_FAILED', `GitHub answered ${res.status} for the release ${o.tag} of ${repo}`, {
      hint: res.status === 401 || res.status === 403 ? 'GITHUB_TOKEN is wrong or lacks access to the repository' : 'try again later',
    })
  }
  let assets: Asset[]
  try {
    const body = (await res.json()) as { assets?: unknown }
    assets = Array.isArray(body.assets) ? (body.assets as Asset[]).filter((a) => typeof a?.name === 'string' && typeof a?.url === 'string') : []
  } catch (err) {
    throw new UpdateError('DOWNLOAD_FAILED', `GitHub's answer for release ${o.tag} of ${repo} is not JSON`, { hint: 'try again later', cause: err })
  }
  const tarballName = `${o.app}-${o.version}.tar.gz`
  const find = (name: string) => assets.find((a) => a.name === name && (a.state ?? 'uploaded') === 'uploaded')
  const tarball = find(tarballName)
  const sums = find(SUMS)
  const sig = find(SIG)
  const missing = (what: string) => `release ${o.tag} of ${repo} has no asset ${what} (it has ${assets.map((a) => a.name).join(', ') || 'none'})`
  if (!tarball) throw new UpdateError('DOWNLOAD_FAILED', missing(tarballName), { hint: 'the app expects a prebuilt artifact: ask its maintainer to attach it, or remove "artifacts" from its definition to build from source' })
  if (!sums) throw new UpdateError('CHECKSUM_MISMATCH', missing(SUMS), { hint: 'the release must publish SHA256SUMS beside the tarball; ask its maintainer' })
  if (!sig) throw new UpdateError('SIGNATURE_MISSING', missing(SIG), { hint: 'the release must publish SHA256SUMS.sig (ssh-keygen -Y sign -n upkeep-release); ask its maintainer' })
  // The API URLs, not browser_download_url: they work for private repositories with the token.
  const gh = { token: o.githubToken }
  const until = exhaustedUntil(rate, now)
  return {
    name: tarballName,
    tarball: { url: tarball.url, name: tarballName, github: gh },
    sums: { url: sums.url, name: SUMS, github: gh },
    signature: { url: sig.url, name: SIG, github: gh },
    ...(until ? { rateLimitedUntil: until } : {}),
  }
}
