import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { http, HttpResponse, passthrough } from 'msw'
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest'
import { artifactsFromPattern, resolveArtifacts, verifyArtifactSource } from '../../../updater/artifacts/artifact-source'
import { RateLimitedError } from '../../../updater/artifacts/download'
import { createRunTool } from '../../../updater/artifacts/run-tool'
import { pinKey } from '../../../updater/artifacts/trust'
import { fetchVerifiedRelease } from '../../../updater/artifacts/verified-release'
import { goodEntries, makeTarGz, sha256, signFile, sshKeygen, startFileServer, type FileServer } from '../../support/artifacts'
import { fakeClock } from '../../support/clock'
import { GITHUB_API, githubHeaders, githubRelease, rateLimitedResponse, secondaryRateLimitResponse, setupGitHubMock, type GitHubAsset, type GitHubRelease } from '../../support/msw'

// GitHub release assets: the API (msw, shaped like GitHub's answers) redirects each asset to a
// storage host, here a real HTTP server on 127.0.0.1 that records whether a token reached it.

const clock = fakeClock('2026-11-23T10:00:00.000Z')
const github = setupGitHubMock(clock)
const TOKEN = 'ghp_upkeeptesttoken0000000000000000000000'
const run = createRunTool()
let storage: FileServer
let dir: string
let allowed: string
let files: { tarball: Buffer; sums: Buffer; sig: Buffer }
/** API requests our handlers answered: method, path, authorization, accept. */
let apiSeen: { path: string; authorization: string | null; accept: string | null }[]

beforeAll(async () => {
  storage = await startFileServer()
  dir = await mkdtemp(path.join(tmpdir(), 'upkeep-gh-assets-'))
  const key = sshKeygen(dir, 'maintainer')
  allowed = path.join(dir, 'trusted-keys')
  await pinKey(allowed, { publicKey: key.pub, principal: 'release@acme' })
  const tarball = await makeTarGz(goodEntries())
  const sums = Buffer.from(`${sha256(tarball)}  widget-1.2.0.tar.gz\n`)
  await writeFile(path.join(dir, 'SHA256SUMS'), sums)
  const sig = Buffer.from(await signFile(key, path.join(dir, 'SHA256SUMS')))
  files = { tarball, sums, sig }
})
afterAll(async () => {
  await storage.close()
  await rm(dir, { recursive: true, force: true })
})
beforeEach(() => {
  apiSeen = []
  storage.requests.length = 0
  storage.files.clear()
  // The storage host is real: let msw pass requests to it through.
  github.use(http.all(`${storage.url}/*`, () => passthrough()))
})

const names = ['widget-1.2.0.tar.gz', 'SHA256SUMS', 'SHA256SUMS.sig'] as const

/** The release of v1.2.0 with `assets`, each asset's API URL redirecting to the storage server. */
function serveRelease(repo: string, o: { assets?: readonly string[]; needsToken?: boolean; assetResponse?: () => Response } = {}): GitHubRelease {
  const base = githubRelease('v1.2.0', { repo })
  const template = base.assets[0]!
  const assets: GitHubAsset[] = (o.assets ?? names).map((name, i) => {
    const id = base.id * 10 + i + 1
    return { ...template, id, name, size: 1, url: `${GITHUB_API}/repos/${repo}/releases/assets/${id}`, browser_download_url: `https://github.com/${repo}/releases/download/v1.2.0/${name}` }
  })
  const release = { ...base, assets }
  const body: Record<string, Buffer> = { 'widget-1.2.0.tar.gz': files.tarball, SHA256SUMS: files.sums, 'SHA256SUMS.sig': files.sig }
  const allowedIn = (request: Request) => !o.needsToken || request.headers.get('authorization') === `Bearer ${TOKEN}`
  const seen = (request: Request) => apiSeen.push({ path: new URL(request.url).pathname, authorization: request.headers.get('authorization'), accept: request.headers.get('accept') })
  const notFound = () => HttpResponse.json({ message: 'Not Found', status: '404' }, { status: 404, headers: githubHeaders({ rate: github.rate }) })
  github.use(
    http.get(`${GITHUB_API}/repos/${repo}/releases/tags/:tag`, ({ request, params }) => {
      seen(request)
      if (!allowedIn(request) || params.tag !== 'v1.2.0') return notFound()
      return HttpResponse.json(release, { headers: githubHeaders({ rate: github.rate, authenticated: request.headers.has('authorization') }) })
    }),
    http.get(`${GITHUB_API}/repos/${repo}/releases/assets/:id`, ({ request, params }) => {
      seen(request)
      if (!allowedIn(request)) return notFound()
      if (o.assetResponse) return o.assetResponse()
      const asset = assets.find((a) => String(a.id) === params.id)
      if (!asset) return notFound()
      if (request.headers.get('accept') !== 'application/octet-stream') return HttpResponse.json(asset, { headers: githubHeaders({ rate: github.rate }) })
      // GitHub answers 302 to a short-lived signed URL on its storage host.
      const signed = `/${repo}/${asset.id}/${asset.name}?X-Amz-Signature=abc&X-Amz-Expires=300`
      storage.files.set(`/${repo}/${asset.id}/${asset.name}`, { body: body[asset.name]! })
      return new HttpResponse(null, { status: 302, headers: { location: `${storage.url}${signed}` } })
    }),
  )
  return release
}

function fetchOptions(repo: string, extra: { githubToken?: string; notBefore?: Date } = {}) {
  const n = Math.random().toString(36).slice(2)
  return {
    source: { github: repo },
    app: 'widget',
    version: '1.2.0',
    tag: 'v1.2.0',
    downloadDir: path.join(dir, `dl-${n}`),
    staging: path.join(dir, `staging-${n}`),
    allowedSignersFile: allowed,
    fetch,
    now: () => clock.now(),
    run,
    ...extra,
  }
}

describe('verifyArtifactSource / artifactsFromPattern', () => {
  test.each([
    [{ github: 'acme/widget' }, { github: 'acme/widget' }],
    [{ url: 'https://dl.example.com/widget/{version}/widget-{version}.tar.gz' }, { url: 'https://dl.example.com/widget/{version}/widget-{version}.tar.gz' }],
    [{ url: 'https://dl.example.com/{tag}/widget.tar.gz' }, { url: 'https://dl.example.com/{tag}/widget.tar.gz' }],
  ])('accepts %j', (value, expected) => {
    expect(verifyArtifactSource(value)).toEqual(expected)
  })
  test.each([
    ['not an object', 'acme/widget', /must be an object/],
    ['both', { github: 'acme/widget', url: 'https://x/{version}.tgz' }, /exactly one/],
    ['a bad repo', { github: 'acme/../widget' }, /not a GitHub repository name/],
    ['no version in the URL', { url: 'https://dl.example.com/latest.tar.gz' }, /must contain \{version\} or \{tag\}/],
    ['plain http', { url: 'http://dl.example.com/{version}/w.tar.gz' }, /must be https/],
    ['a query', { url: 'https://dl.example.com/get?v={version}' }, /without \? or #/],
  ])('refuses %s', (_n, value, message) => {
    expect(() => verifyArtifactSource(value)).toThrow(message)
  })
  test('the three URLs of a pattern', () => {
    expect(artifactsFromPattern('https://dl.example.com/widget/{version}/widget-{version}.tar.gz', '1.2.0', 'v1.2.0')).toEqual({
      name: 'widget-1.2.0.tar.gz',
      tarball: { url: 'https://dl.example.com/widget/1.2.0/widget-1.2.0.tar.gz', name: 'widget-1.2.0.tar.gz' },
      sums: { url: 'https://dl.example.com/widget/1.2.0/SHA256SUMS', name: 'SHA256SUMS' },
      signature: { url: 'https://dl.example.com/widget/1.2.0/SHA256SUMS.sig', name: 'SHA256SUMS.sig' },
    })
  })
})

describe('GitHub release assets', () => {
  test('a public repository: assets through the API, no token sent anywhere', async () => {
    serveRelease('acme/widget')
    const result = await fetchVerifiedRelease(fetchOptions('acme/widget'))
    expect(result).toMatchObject({ artifact: 'widget-1.2.0.tar.gz', sha256: sha256(files.tarball), signer: { principal: 'release@acme' } })
    expect(apiSeen.map((r) => r.path)).toEqual([
      '/repos/acme/widget/releases/tags/v1.2.0',
      expect.stringMatching(/^\/repos\/acme\/widget\/releases\/assets\/\d+$/),
      expect.stringMatching(/assets/),
      expect.stringMatching(/assets/),
    ])
    expect(apiSeen.slice(1).every((r) => r.accept === 'application/octet-stream')).toBe(true)
    expect(storage.requests.map((r) => r.headers.authorization)).toEqual([undefined, undefined, undefined])
  })

  test('a private repository with GITHUB_TOKEN: the token goes to the API only, never to the storage host', async () => {
    serveRelease('acme/secret', { needsToken: true })
    const result = await fetchVerifiedRelease(fetchOptions('acme/secret', { githubToken: TOKEN }))
    expect(result.unpacked.files).toBe(3)
    expect(apiSeen.length).toBe(4)
    expect(apiSeen.every((r) => r.authorization === `Bearer ${TOKEN}`)).toBe(true)
    expect(storage.requests.length).toBe(3)
    expect(storage.requests.every((r) => r.headers.authorization === undefined)).toBe(true)
  })

  test('a private repository without a token: its release is not found, and the hint says GITHUB_TOKEN', async () => {
    serveRelease('acme/secret', { needsToken: true })
    const o = fetchOptions('acme/secret')
    await expect(fetchVerifiedRelease(o)).rejects.toMatchObject({
      code: 'DOWNLOAD_FAILED',
      message: 'acme/secret has no GitHub release for tag v1.2.0',
      hint: expect.stringMatching(/GITHUB_TOKEN/),
    })
  })

  test.each([
    [['SHA256SUMS', 'SHA256SUMS.sig'], 'DOWNLOAD_FAILED', /has no asset widget-1\.2\.0\.tar\.gz \(it has SHA256SUMS, SHA256SUMS\.sig\)/],
    [['widget-1.2.0.tar.gz', 'SHA256SUMS.sig'], 'CHECKSUM_MISMATCH', /has no asset SHA256SUMS /],
    [['widget-1.2.0.tar.gz', 'SHA256SUMS'], 'SIGNATURE_MISSING', /has no asset SHA256SUMS\.sig/],
  ])('a release with assets %j is refused', async (assets, code, message) => {
    serveRelease('acme/widget', { assets })
    await expect(resolveArtifacts({ github: 'acme/widget' }, { app: 'widget', version: '1.2.0', tag: 'v1.2.0', fetch, now: () => clock.now() })).rejects.toMatchObject({ code, message })
  })

  test('the primary rate limit used up: RATE_LIMITED until GitHub\'s reset', async () => {
    github.rate.remaining = 0
    github.use(http.get(`${GITHUB_API}/repos/acme/widget/releases/tags/:tag`, () => rateLimitedResponse(github.rate)))
    const err = await resolveArtifacts({ github: 'acme/widget' }, { app: 'widget', version: '1.2.0', tag: 'v1.2.0', fetch, now: () => clock.now() }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(RateLimitedError)
    expect(err).toMatchObject({ code: 'RATE_LIMITED', until: new Date(github.rate.reset * 1000), hint: expect.stringMatching(/GITHUB_TOKEN raises/) })
  })

  test('a secondary rate limit on an asset download: RATE_LIMITED with retry-after', async () => {
    serveRelease('acme/widget', { assetResponse: () => secondaryRateLimitResponse(github.rate, 90) })
    const err = await fetchVerifiedRelease(fetchOptions('acme/widget')).catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'RATE_LIMITED', until: new Date(clock.now().getTime() + 90_000) })
  })

  test('the release checks\' stored rate-limit time is honoured without asking GitHub', async () => {
    serveRelease('acme/widget')
    const notBefore = new Date(clock.now().getTime() + 600_000)
    await expect(fetchVerifiedRelease(fetchOptions('acme/widget', { notBefore }))).rejects.toMatchObject({ code: 'RATE_LIMITED', until: notBefore })
    expect(apiSeen).toEqual([])
  })
})
