import { lstat, mkdtemp, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest'
import { downloadFile, isAllowedUrl, RateLimitedError, type DownloadOptions, type Progress } from '../../../updater/artifacts/download'
import { startFileServer, type FileServer } from '../../support/artifacts'

// Downloads from a real HTTP server on 127.0.0.1 that can cut, stall, ignore ranges or rate-limit.

let server: FileServer
let dir: string
let n = 0
const body = Buffer.from(Array.from({ length: 300_000 }, (_, i) => i % 251))

beforeAll(async () => {
  server = await startFileServer()
  dir = await mkdtemp(path.join(tmpdir(), 'upkeep-download-'))
})
afterAll(async () => {
  await server.close()
  await rm(dir, { recursive: true, force: true })
})
beforeEach(() => {
  server.files.clear()
  server.requests.length = 0
})

const opts = (extra: Partial<DownloadOptions> = {}): DownloadOptions => ({ fetch, now: () => new Date(), maxBytes: 1 << 20, ...extra })
const dest = () => path.join(dir, `widget-${++n}.tar.gz`)
const exists = (p: string) => lstat(p).then(() => true, () => false)

describe('isAllowedUrl', () => {
  test.each([
    ['https://downloads.example.com/a.tar.gz', true],
    ['http://127.0.0.1:8080/a', true],
    ['http://localhost/a', true],
    ['http://[::1]:9/a', true],
    ['http://downloads.example.com/a.tar.gz', false],
    ['http://127.0.0.1.example.com/a', false],
    ['file:///etc/passwd', false],
    ['ftp://example.com/a', false],
  ])('%s → %s', (url, ok) => {
    expect(isAllowedUrl(new URL(url))).toBe(ok)
  })
})

describe('downloadFile', () => {
  test('downloads to the destination, reporting progress up to the total', async () => {
    server.files.set('/a.tar.gz', { body })
    const progress: Progress[] = []
    const to = dest()
    const result = await downloadFile({ url: `${server.url}/a.tar.gz`, name: 'a.tar.gz' }, to, opts({ onProgress: (p) => progress.push(p), progressEveryMs: 0 }))
    expect(result).toEqual({ bytes: body.length, resumedFrom: 0 })
    expect((await readFile(to)).equals(body)).toBe(true)
    expect(progress.at(-1)).toEqual({ done: body.length, total: body.length })
    expect(progress.every((p, i) => i === 0 || p.done >= progress[i - 1]!.done)).toBe(true)
    expect(await exists(`${to}.part`)).toBe(false)
    expect(server.requests[0]!.headers.authorization).toBeUndefined()
  })

  test('a truncated download is refused, kept as .part, and the next attempt resumes it with Range', async () => {
    server.files.set('/a.tar.gz', { body, cutAfter: 100_000 })
    const to = dest()
    await expect(downloadFile({ url: `${server.url}/a.tar.gz`, name: 'a.tar.gz' }, to, opts())).rejects.toMatchObject({
      code: 'DOWNLOAD_FAILED',
      message: expect.stringMatching(/^a\.tar\.gz: (the connection broke|the download ended) after \d+ of 300000 bytes/),
      hint: expect.stringMatching(/resumes/),
    })
    expect(await exists(to)).toBe(false)
    const partial = (await stat(`${to}.part`)).size
    expect(partial).toBeGreaterThan(0)
    expect(partial).toBeLessThanOrEqual(100_000)

    server.files.set('/a.tar.gz', { body })
    const result = await downloadFile({ url: `${server.url}/a.tar.gz`, name: 'a.tar.gz' }, to, opts())
    expect(result).toEqual({ bytes: body.length, resumedFrom: partial })
    expect(server.requests.at(-1)!.headers.range).toBe(`bytes=${partial}-`)
    expect(server.requests.at(-1)!.headers['if-range']).toMatch(/^"[0-9a-f]{16}"$/)
    expect((await readFile(to)).equals(body)).toBe(true)
  })

  test('a server that ignores Range restarts the download from zero', async () => {
    server.files.set('/a.tar.gz', { body, cutAfter: 50_000 })
    const to = dest()
    await expect(downloadFile({ url: `${server.url}/a.tar.gz`, name: 'a.tar.gz' }, to, opts())).rejects.toMatchObject({ code: 'DOWNLOAD_FAILED' })
    server.files.set('/a.tar.gz', { body, ranges: false })
    expect(await downloadFile({ url: `${server.url}/a.tar.gz`, name: 'a.tar.gz' }, to, opts())).toEqual({ bytes: body.length, resumedFrom: 0 })
    expect((await readFile(to)).equals(body)).toBe(true)
  })

  test('a file that changed on the server since the partial download restarts (If-Range)', async () => {
    server.files.set('/a.tar.gz', { body, cutAfter: 50_000 })
    const to = dest()
    await expect(downloadFile({ url: `${server.url}/a.tar.gz`, name: 'a.tar.gz' }, to, opts())).rejects.toMatchObject({ code: 'DOWNLOAD_FAILED' })
    const changed = Buffer.concat([Buffer.from('v2'), body])
    server.files.set('/a.tar.gz', { body: changed })
    expect(await downloadFile({ url: `${server.url}/a.tar.gz`, name: 'a.tar.gz' }, to, opts())).toEqual({ bytes: changed.length, resumedFrom: 0 })
    expect((await readFile(to)).equals(changed)).toBe(true)
  })

  test('refuses a file whose Content-Length is over the limit before reading it', async () => {
    server.files.set('/big.tar.gz', { body })
    const to = dest()
    await expect(downloadFile({ url: `${server.url}/big.tar.gz`, name: 'big.tar.gz' }, to, opts({ maxBytes: 1000 }))).rejects.toMatchObject({
      code: 'DOWNLOAD_FAILED',
      message: 'big.tar.gz is 300000 bytes, more than the limit of 1000',
    })
    expect(await exists(to)).toBe(false)
    expect(await exists(`${to}.part`)).toBe(false)
  })

  test('refuses a file without Content-Length once it streams past the limit', async () => {
    server.files.set('/big.tar.gz', { body, chunked: true })
    const to = dest()
    await expect(downloadFile({ url: `${server.url}/big.tar.gz`, name: 'big.tar.gz' }, to, opts({ maxBytes: 1000 }))).rejects.toMatchObject({
      code: 'DOWNLOAD_FAILED',
      message: 'big.tar.gz is larger than the limit of 1000 bytes',
    })
    expect(await exists(to)).toBe(false)
    expect(await exists(`${to}.part`)).toBe(false)
  })

  test('a stalled download fails after the stall timeout, keeping what came', async () => {
    server.files.set('/slow.tar.gz', { body, stallAfter: 10_000 })
    const to = dest()
    await expect(downloadFile({ url: `${server.url}/slow.tar.gz`, name: 'slow.tar.gz' }, to, opts({ stallTimeoutMs: 300 }))).rejects.toMatchObject({
      code: 'DOWNLOAD_FAILED',
      message: expect.stringMatching(/^slow\.tar\.gz: no data for 0\.3 s after \d+ of 300000 bytes$/),
    })
    expect(await exists(to)).toBe(false)
  })

  test('a server that never answers fails after the stall timeout', async () => {
    server.files.set('/silent.tar.gz', { body, hang: true })
    await expect(downloadFile({ url: `${server.url}/silent.tar.gz`, name: 'silent.tar.gz' }, dest(), opts({ stallTimeoutMs: 300 }))).rejects.toMatchObject({
      code: 'DOWNLOAD_FAILED',
      message: `silent.tar.gz: 127.0.0.1:${new URL(server.url).port} did not answer within 0.3 s`,
    })
  })

  test('a slow download that keeps sending takes longer than the stall timeout and succeeds', async () => {
    // 50 pieces 60 ms apart: about 3 s in all, each gap far below the 1.5 s stall timeout.
    server.files.set('/a.tar.gz', { body, dripMs: 60 })
    const to = dest()
    const t0 = Date.now()
    expect(await downloadFile({ url: `${server.url}/a.tar.gz`, name: 'a.tar.gz' }, to, opts({ stallTimeoutMs: 1500 }))).toEqual({ bytes: body.length, resumedFrom: 0 })
    expect(Date.now() - t0).toBeGreaterThan(1500)
    expect((await readFile(to)).equals(body)).toBe(true)
  })

  test.each([
    [404, /answered 404/, /check the artifact URL pattern/],
    [500, /answered 500/, /try the update again later/],
  ])('an HTTP %s is refused', async (status, message, hint) => {
    server.files.set('/x', { body: Buffer.from('no'), status })
    await expect(downloadFile({ url: `${server.url}/x`, name: 'x' }, dest(), opts())).rejects.toMatchObject({ code: 'DOWNLOAD_FAILED', message, hint })
  })

  const now = new Date('2026-11-23T10:00:00Z')
  const epoch = (ms: number) => String(Math.floor(ms / 1000))
  test.each([
    ['429 with retry-after', 429, { 'retry-after': '120' }, '2026-11-23T10:02:00.000Z'],
    ['403 with the limit used up', 403, { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': epoch(now.getTime() + 600_000) }, '2026-11-23T10:10:00.000Z'],
  ])('a rate limit (%s) is RATE_LIMITED with the time to retry', async (_n, status, headers, retryAt) => {
    server.files.set('/x', { body: Buffer.from('{}'), status, headers })
    const err = await downloadFile({ url: `${server.url}/x`, name: 'x' }, dest(), opts({ now: () => now })).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(RateLimitedError)
    const until = new Date(retryAt)
    expect(err).toMatchObject({ code: 'RATE_LIMITED', until, message: `x: 127.0.0.1:${server.url.split(':').at(-1)} rate limit reached; no request before ${until.toISOString()}` })
  })

  test('refuses plain http to another host, and a redirect there', async () => {
    await expect(downloadFile({ url: 'http://downloads.example.com/a.tar.gz', name: 'a' }, dest(), opts())).rejects.toMatchObject({ code: 'DOWNLOAD_FAILED', message: /is not https/ })
    server.files.set('/r', { body: Buffer.alloc(0), status: 302, headers: { location: 'http://downloads.example.com/a.tar.gz' } })
    await expect(downloadFile({ url: `${server.url}/r`, name: 'a' }, dest(), opts())).rejects.toMatchObject({ code: 'DOWNLOAD_FAILED', message: /redirected to http:\/\/downloads.example.com, which is not https/ })
  })
})
