import { http, HttpResponse, type HttpHandler } from 'msw'
import { setupServer, type SetupServer } from 'msw/node'
import { afterAll, afterEach, beforeAll, expect } from 'vitest'
import type { Clock } from '../../updater/shared/clock'

// GitHub's REST API as msw handlers, with payloads and headers shaped like the real ones
// (https://docs.github.com/en/rest/releases/releases#list-releases), so the release client is
// tested against what it will meet.

export const GITHUB_API = 'https://api.github.com'

export interface GitHubUser {
  login: string
  id: number
  node_id: string
  avatar_url: string
  gravatar_id: string
  url: string
  html_url: string
  followers_url: string
  following_url: string
  gists_url: string
  starred_url: string
  subscriptions_url: string
  organizations_url: string
  repos_url: string
  events_url: string
  received_events_url: string
  type: 'User' | 'Bot' | 'Organization'
  user_view_type: string
  site_admin: boolean
}

export interface GitHubAsset {
  url: string
  id: number
  node_id: string
  name: string
  label: string | null
  uploader: GitHubUser
  content_type: string
  state: 'uploaded' | 'open'
  size: number
  digest: string | null
  download_count: number
  created_at: string
  updated_at: string
  browser_download_url: string
}

export interface GitHubRelease {
  url: string
  assets_url: string
  upload_url: string
  html_url: string
  id: number
  author: GitHubUser
  node_id: string
  tag_name: string
  target_commitish: string
  name: string | null
  draft: boolean
  immutable: boolean
  prerelease: boolean
  created_at: string
  updated_at: string
  published_at: string | null
  assets: GitHubAsset[]
  tarball_url: string | null
  zipball_url: string | null
  body: string | null
  discussion_url?: string
  mentions_count?: number
}

let nextId = 180_000_000

export function githubUser(login = 'release-bot', id = 41898282): GitHubUser {
  const api = `${GITHUB_API}/users/${login}`
  return {
    login,
    id,
    node_id: `MDQ6VXNlcj${Buffer.from(String(id)).toString('base64').replace(/=+$/, '')}`,
    avatar_url: `https://avatars.githubusercontent.com/u/${id}?v=4`,
    gravatar_id: '',
    url: api,
    html_url: `https://github.com/${login}`,
    followers_url: `${api}/followers`,
    following_url: `${api}/following{/other_user}`,
    gists_url: `${api}/gists{/gist_id}`,
    starred_url: `${api}/starred{/owner}{/repo}`,
    subscriptions_url: `${api}/subscriptions`,
    organizations_url: `${api}/orgs`,
    repos_url: `${api}/repos`,
    events_url: `${api}/events{/privacy}`,
    received_events_url: `${api}/received_events`,
    type: 'User',
    user_view_type: 'public',
    site_admin: false,
  }
}

/**
 * A release object with every field GitHub sends. Drafts get GitHub's `untagged-…` URL and no
 * `published_at`, as the real API returns them (to a token that may see drafts).
 */
export function githubRelease(tag: string, overrides: Partial<GitHubRelease> & { repo?: string; publishedAt?: string } = {}): GitHubRelease {
  const { repo = 'acme/widget', publishedAt = '2026-11-20T09:30:00Z', ...fields } = overrides
  const id = nextId++
  const api = `${GITHUB_API}/repos/${repo}`
  const draft = fields.draft ?? false
  const author = githubUser()
  const created = new Date(Date.parse(publishedAt) - 5 * 60_000).toISOString().replace(/\.\d{3}Z$/, 'Z')
  const pathTag = draft ? `untagged-${id.toString(16)}` : tag
  const version = tag.replace(/^v/, '')
  const tarball = `upkeep-${version}.tar.gz`
  const asset = (assetId: number, name: string, contentType: string, size: number): GitHubAsset => ({
    url: `${api}/releases/assets/${assetId}`,
    id: assetId,
    node_id: `RA_kwDOL${assetId.toString(36)}`,
    name,
    label: '',
    uploader: githubUser('github-actions[bot]', 41898282),
    content_type: contentType,
    state: 'uploaded',
    size,
    digest: `sha256:${'ab'.repeat(32)}`,
    download_count: 12,
    created_at: publishedAt,
    updated_at: publishedAt,
    browser_download_url: `https://github.com/${repo}/releases/download/${tag}/${name}`,
  })
  return {
    url: `${api}/releases/${id}`,
    assets_url: `${api}/releases/${id}/assets`,
    upload_url: `https://uploads.github.com/repos/${repo}/releases/${id}/assets{?name,label}`,
    html_url: `https://github.com/${repo}/releases/tag/${pathTag}`,
    id,
    author,
    node_id: `RE_kwDOL${id.toString(36)}`,
    tag_name: tag,
    target_commitish: 'main',
    name: `Widget ${version}`,
    draft,
    immutable: false,
    prerelease: false,
    created_at: created,
    updated_at: publishedAt,
    published_at: draft ? null : publishedAt,
    assets: [asset(id * 10 + 1, tarball, 'application/gzip', 1_843_200), asset(id * 10 + 2, 'SHA256SUMS', 'text/plain', 90)],
    tarball_url: draft ? null : `${api}/tarball/${tag}`,
    zipball_url: draft ? null : `${api}/zipball/${tag}`,
    body: `## What's changed\n* Faster widgets in ${tag} by @octocat in https://github.com/${repo}/pull/42\n\n**Full Changelog**: https://github.com/${repo}/compare/v0.9.0...${tag}`,
    mentions_count: 1,
    ...fields,
  }
}

/** GitHub's per-client limit: 60 an hour unauthenticated, 5000 with a token. */
export interface RateLimitState {
  limit: number
  remaining: number
  /** Epoch seconds of the reset. */
  reset: number
  used: number
}

/** The headers GitHub sends with an API response. */
export function githubHeaders(opts: { rate: RateLimitState; etag?: string; lastModified?: string; authenticated?: boolean; link?: string }): Headers {
  const h = new Headers({
    'content-type': 'application/json; charset=utf-8',
    'cache-control': opts.authenticated ? 'private, max-age=60, s-maxage=60' : 'public, max-age=60, s-maxage=60',
    vary: 'Accept, Authorization, Cookie, X-GitHub-OTP,Accept-Encoding, Accept, X-Requested-With',
    'x-github-media-type': 'github.v3; format=json',
    'x-github-api-version-selected': '2022-11-28',
    'x-ratelimit-limit': String(opts.rate.limit),
    'x-ratelimit-remaining': String(opts.rate.remaining),
    'x-ratelimit-reset': String(opts.rate.reset),
    'x-ratelimit-used': String(opts.rate.used),
    'x-ratelimit-resource': 'core',
    'access-control-expose-headers':
      'ETag, Link, Location, Retry-After, X-GitHub-OTP, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Used, X-RateLimit-Resource, X-RateLimit-Reset, X-OAuth-Scopes, X-Accepted-OAuth-Scopes, X-Poll-Interval, X-GitHub-Media-Type, X-GitHub-SSO, X-GitHub-Request-Id, Deprecation, Sunset',
    'access-control-allow-origin': '*',
    'strict-transport-security': 'max-age=31536000; includeSubdomains; preload',
    'x-frame-options': 'deny',
    'x-content-type-options': 'nosniff',
    'x-xss-protection': '0',
    'referrer-policy': 'origin-when-cross-origin, strict-origin-when-cross-origin',
    'content-security-policy': "default-src 'none'",
    server: 'github.com',
    'x-github-request-id': `C0DE:${Math.floor(Math.random() * 0xffff).toString(16).toUpperCase()}:2B1F4A7:2E5C9D1:6741B3C2`,
  })
  if (opts.authenticated) {
    h.set('x-oauth-scopes', '')
    h.set('x-accepted-oauth-scopes', 'repo')
    h.set('github-authentication-token-expiration', '2027-01-31 00:00:00 UTC')
  }
  if (opts.etag) h.set('etag', opts.etag)
  if (opts.lastModified) h.set('last-modified', opts.lastModified)
  if (opts.link) h.set('link', opts.link)
  return h
}

export interface RecordedRequest {
  method: string
  url: string
  headers: Headers
}

export interface ServeOptions {
  etag?: string
  lastModified?: string
  /** GitHub's pagination header, sent when there are more pages. */
  link?: string
  /** Answers only after this promise settles (to hold a request in flight). */
  hold?: Promise<unknown>
}

export interface GitHubMock {
  server: SetupServer
  /** Every request that reached GitHub's API, in order. */
  requests: RecordedRequest[]
  /** The rate limit the next answers report; tests may set `remaining` to 0. */
  rate: RateLimitState
  /** Lists `releases` for `repo`, with an ETag; answers 304 to a matching `If-None-Match`. */
  serveReleases(repo: string, releases: GitHubRelease[], opts?: ServeOptions): void
  /** Answers every releases request for `repo` with `respond` (errors, odd payloads). */
  respond(repo: string, respond: (req: Request) => Response | Promise<Response>): void
  use(...handlers: HttpHandler[]): void
}

/**
 * Starts msw for the calling test file (`onUnhandledRequest: 'error'`: anything not mocked fails
 * the request, and the test in afterEach). Times come from `clock`.
 */
export function setupGitHubMock(clock: Clock): GitHubMock {
  const requests: RecordedRequest[] = []
  const unhandled: string[] = []
  const server = setupServer()
  const rate: RateLimitState = { limit: 60, remaining: 60, reset: 0, used: 0 }
  const resetRate = () => Object.assign(rate, { limit: 60, remaining: 60, reset: Math.floor(clock.now().getTime() / 1000) + 3600, used: 0 })

  beforeAll(() => {
    server.events.on('request:unhandled', ({ request }) => unhandled.push(`${request.method} ${request.url}`))
    server.listen({ onUnhandledRequest: 'error' })
  })
  afterEach(() => {
    server.resetHandlers()
    requests.length = 0
    resetRate()
    const seen = unhandled.splice(0)
    expect(seen, 'requests no msw handler answered').toEqual([])
  })
  afterAll(() => server.close())
  resetRate()

  const record = (request: Request) => requests.push({ method: request.method, url: request.url, headers: new Headers(request.headers) })
  const releasesUrl = (repo: string) => `${GITHUB_API}/repos/${repo}/releases`
  const headersFor = (request: Request, extra: { etag?: string; lastModified?: string; link?: string } = {}) =>
    githubHeaders({ rate: { ...rate }, ...extra, authenticated: request.headers.has('authorization') })

  return {
    server,
    requests,
    rate,
    serveReleases(repo, releases, opts = {}) {
      const etag = opts.etag ?? `W/"${Buffer.from(JSON.stringify(releases.map((r) => r.id))).toString('base64').slice(0, 32)}"`
      const lastModified = opts.lastModified ?? new Date(Math.max(...releases.map((r) => Date.parse(r.updated_at)), 0)).toUTCString()
      server.use(
        http.get(releasesUrl(repo), async ({ request }) => {
          record(request)
          if (opts.hold) await opts.hold
          rate.used++
          if (request.headers.get('if-none-match') === etag) {
            return new HttpResponse(null, { status: 304, headers: headersFor(request, { etag, lastModified }) })
          }
          rate.remaining = Math.max(0, rate.remaining - 1)
          return HttpResponse.json(releases, { headers: headersFor(request, { etag, lastModified, link: opts.link }) })
        }),
      )
    },
    respond(repo, respond) {
      server.use(
        http.get(releasesUrl(repo), async ({ request }) => {
          record(request)
          return respond(request)
        }),
      )
    },
    use: (...handlers) => server.use(...handlers),
  }
}

/** GitHub's answer when the primary rate limit is used up. */
export function rateLimitedResponse(rate: RateLimitState): Response {
  const headers = githubHeaders({ rate: { ...rate, remaining: 0 } })
  return HttpResponse.json(
    {
      message:
        "API rate limit exceeded for 203.0.113.7. (But here's the good news: Authenticated requests get a higher rate limit. Check out the documentation for more details.)",
      documentation_url: 'https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting',
    },
    { status: 403, headers },
  )
}

/** GitHub's answer for a secondary rate limit: 429 (or 403) with `retry-after`. */
export function secondaryRateLimitResponse(rate: RateLimitState, retryAfterSeconds: number, status: 403 | 429 = 429): Response {
  const headers = githubHeaders({ rate })
  headers.set('retry-after', String(retryAfterSeconds))
  return HttpResponse.json(
    {
      message: 'You have exceeded a secondary rate limit. Please wait a few minutes before you try again.',
      documentation_url: 'https://docs.github.com/free-pro-team@latest/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits',
      status: String(status),
    },
    { status, headers },
  )
}

/** GitHub's 404 (an unknown repository, or a private one without a token). */
export function notFoundResponse(rate: RateLimitState): Response {
  return HttpResponse.json(
    { message: 'Not Found', documentation_url: 'https://docs.github.com/rest/releases/releases#list-releases', status: '404' },
    { status: 404, headers: githubHeaders({ rate }) },
  )
}
