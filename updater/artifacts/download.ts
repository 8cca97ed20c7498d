import { open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { UpdateError, type UpdateErrorOptions } from '../shared/errors'
import { isAllowedUrl } from '../shared/artifact-url'
import { rateLimitedUntil, readRateLimit } from '../shared/github-rate-limit'

export { isAllowedUrl }

/** Where a file comes from. */
export interface DownloadSource {
  url: string
  /** How messages name it, e.g. "widget-1.2.0.tar.gz". */
  name: string
  /** A GitHub release asset API URL: sent with `Accept: application/octet-stream` and the token. */
  github?: { token?: string }
}

export interface Progress {
  done: number
  /** Undefined when the server does not say. */
  total?: number
}

export interface DownloadOptions {
  fetch: typeof fetch
  now: () => Date
  /** Refused beyond this many bytes: on Content-Length before reading, and while streaming. */
  maxBytes: number
  /** No byte for this long is a failure (the partial file is kept for a resume). Default 30 s. */
  stallTimeoutMs?: number
  /** Called at most every `progressEveryMs` (default 500) and once at the end. */
  onProgress?: (p: Progress) => void
  progressEveryMs?: number
  userAgent?: string
  signal?: AbortSignal
}

export interface Downloaded {
  bytes: number
  /** Bytes that came from an earlier, interrupted attempt. */
  resumedFrom: number
}

/** GitHub (or another server) said to wait: no request before `until`. */
export class RateLimitedError extends UpdateError {
  constructor(
    readonly until: Date,
    message: string,
    opts: UpdateErrorOptions = {},
  ) {
    super('RATE_LIMITED', message, opts)
  }
}

/** The server answered, but not with the file: `status` says what (404 for a release without it). */
export class DownloadStatusError extends UpdateError {
  constructor(
    readonly status: number,
    message: string,
    opts: UpdateErrorOptions = {},
  ) {
    super('DOWNLOAD_FAILED', message, opts)
  }
}

const MAX_REDIRECTS = 5


function failed(message: string, hint = 'check the network and the release, then try the update again (an interrupted download resumes)', cause?: unknown): UpdateError {
  return new UpdateError('DOWNLOAD_FAILED', message, { hint, cause })
}

interface PartMeta {
  url: string
  /** A strong ETag or a Last-Modified date: what `If-Range` needs to resume safely. */
  validator: string
}

/**
 * GETs `src` into `dest`: into `dest.part` first, renamed when complete. An earlier `dest.part`
 * is resumed with `Range` (and `If-Range`, so a changed file restarts from zero); a 200 answer
 * restarts it. Redirects are followed by hand so the token never goes to another host (GitHub's
 * asset API redirects to a storage host with a signed URL). Throws DOWNLOAD_FAILED,
 * RATE_LIMITED (`RateLimitedError`).
 */
export async function downloadFile(src: DownloadSource, dest: string, o: DownloadOptions): Promise<Downloaded> {
  const part = `${dest}.part`
  const metaFile = `${dest}.part.json`
  const meta = await readMeta(metaFile)
  let have = meta?.url === src.url ? await sizeOf(part) : 0
  if (have === 0) await rm(part, { force: true })

  let res = await request(src, o, have > 0 ? { range: have, ifRange: meta!.validator } : undefined)
  if (res.status === 416 || (res.status === 206 && rangeStart(res) !== have)) {
    // The partial file does not fit what the server has now: start again.
    void res.body?.cancel().catch(() => {})
    await rm(part, { force: true })
    have = 0
    res = await request(src, o)
  }
  if (res.status === 200) {
    have = 0
    await rm(part, { force: true })
  } else if (res.status !== 206) {
    void res.body?.cancel().catch(() => {})
    throw new DownloadStatusError(res.status, `${src.name}: the server answered ${res.status} ${res.statusText}`.trim(), { hint: hintForStatus(res.status, src) })
  }

  const total = res.status === 206 ? rangeTotal(res) : contentLength(res)
  if (total !== undefined && total > o.maxBytes) {
    void res.body?.cancel().catch(() => {})
    await clear(part, metaFile)
    throw failed(`${src.name} is ${total} bytes, more than the limit of ${o.maxBytes}`, 'the release is larger than this app allows: raise the artifact size limit in its definition if that is expected')
  }
  const validator = strongValidator(res)
  if (validator) await writeFile(metaFile, JSON.stringify({ url: src.url, validator } satisfies PartMeta))
  else await rm(metaFile, { force: true })

  const resumedFrom = have
  let done = have
  const file = await open(part, have > 0 ? 'a' : 'w', 0o600)
  let lastReport = 0
  const report = (force = false) => {
    const t = o.now().getTime()
    if (!o.onProgress || (!force && t - lastReport < (o.progressEveryMs ?? 500))) return
    lastReport = t
    o.onProgress({ done, ...(total !== undefined ? { total } : {}) })
  }
  try {
    const reader = res.body?.getReader()
    if (!reader) throw failed(`${src.name}: the server sent no body`)
    for (;;) {
      const { value, done: end } = await readWithin(reader, o.stallTimeoutMs ?? 30_000, src.name, () => `${done}${total !== undefined ? ` of ${total}` : ''} bytes`)
      if (end) break
      done += value.byteLength
      if (done > o.maxBytes) {
        void reader.cancel().catch(() => {})
        await file.close()
        await clear(part, metaFile)
        throw failed(`${src.name} is larger than the limit of ${o.maxBytes} bytes`, 'the release is larger than this app allows: raise the artifact size limit in its definition if that is expected')
      }
      await file.write(value)
      report()
    }
    await file.sync()
  } finally {
    await file.close().catch(() => {})
  }
  if (total !== undefined && done !== total) throw failed(`${src.name}: the download ended after ${done} of ${total} bytes`)
  report(true)
  await rename(part, dest)
  await rm(metaFile, { force: true })
  return { bytes: done, resumedFrom }
}

/** One GET, following redirects by hand; the Authorization header stays with the first origin. */
async function request(src: DownloadSource, o: DownloadOptions, range?: { range: number; ifRange: string }): Promise<Response> {
  let url = new URL(src.url)
  if (!isAllowedUrl(url)) throw failed(`${src.name}: ${url.protocol}//${url.host} is not https`, 'artifact URLs must be https')
  const origin = url.origin
  const headers: Record<string, string> = { 'User-Agent': o.userAgent ?? 'upkeep', Accept: src.github ? 'application/octet-stream' : '*/*' }
  if (src.github) headers['X-GitHub-Api-Version'] = '2022-11-28'
  if (src.github?.token) headers.Authorization = `Bearer ${src.github.token}`
  if (range) Object.assign(headers, { Range: `bytes=${range.range}-`, 'If-Range': range.ifRange })
  for (let hop = 0; ; hop++) {
    let res: Response
    // Only the wait for the answer's headers is bounded here; the body has its stall timeout.
    const stallMs = o.stallTimeoutMs ?? 30_000
    const answered = new AbortController()
    const timer = setTimeout(() => answered.abort(), stallMs)
    try {
      res = await o.fetch(url, { headers, redirect: 'manual', signal: o.signal ? AbortSignal.any([o.signal, answered.signal]) : answered.signal })
    } catch (err) {
      if (answered.signal.aborted) throw failed(`${src.name}: ${url.host} did not answer within ${(stallMs / 1000).toFixed(stallMs % 1000 ? 1 : 0)} s`, undefined, err)
      throw failed(`${src.name}: cannot reach ${url.host}: ${networkReason(err)}`, undefined, err)
    } finally {
      clearTimeout(timer)
    }
    const now = o.now()
    if (res.status === 403 || res.status === 429) {
      const until = rateLimitedUntil(res, readRateLimit(res.headers), now)
      if (until) {
        void res.body?.cancel().catch(() => {})
        throw new RateLimitedError(until, `${src.name}: ${url.host} rate limit reached; no request before ${until.toISOString()}`, {
          hint: `try the update again after ${until.toISOString()}; a GITHUB_TOKEN raises GitHub's limit`,
        })
      }
    }
    if (res.status < 300 || res.status >= 400 || res.status === 304) return res
    const location = res.headers.get('location')
    void res.body?.cancel().catch(() => {})
    if (!location) throw failed(`${src.name}: ${url.host} answered ${res.status} without a Location`)
    if (hop >= MAX_REDIRECTS) throw failed(`${src.name}: more than ${MAX_REDIRECTS} redirects`)
    const next = new URL(location, url)
    if (!isAllowedUrl(next)) throw failed(`${src.name}: redirected to ${next.protocol}//${next.host}, which is not https`)
    // The token is for the API only; the storage host gets a signed URL of its own.
    if (next.origin !== origin) delete headers.Authorization
    url = next
  }
}

/** Reads the next chunk, or fails when none comes within `ms` (a stalled connection). */
async function readWithin(reader: ReadableStreamDefaultReader<Uint8Array>, ms: number, name: string, progress: () => string): Promise<ReadableStreamReadResult<Uint8Array>> {
  let timer: NodeJS.Timeout | undefined
  const stalled = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(failed(`${name}: no data for ${(ms / 1000).toFixed(ms % 1000 ? 1 : 0)} s after ${progress()}`)), ms)
  })
  try {
    return await Promise.race([reader.read(), stalled])
  } catch (err) {
    if (err instanceof UpdateError) {
      void reader.cancel().catch(() => {})
      throw err
    }
    throw failed(`${name}: the connection broke after ${progress()} (${networkReason(err)})`, undefined, err)
  } finally {
    clearTimeout(timer)
  }
}

function hintForStatus(status: number, src: DownloadSource): string {
  if (status === 404) return src.github ? 'the release has no such asset, or the repository is private: set GITHUB_TOKEN' : 'check the artifact URL pattern in the app definition'
  if (status === 401 || status === 403) return src.github ? 'GITHUB_TOKEN is missing, wrong or lacks access to the repository' : 'the server refuses access'
  if (status >= 500) return 'the server has a problem: try the update again later'
  return 'check the artifact URL pattern in the app definition'
}

function contentLength(res: Response): number | undefined {
  const v = res.headers.get('content-length')
  return v !== null && /^\d+$/.test(v.trim()) ? Number(v) : undefined
}

/** `Content-Range: bytes START-END/TOTAL`. */
function rangeStart(res: Response): number | undefined {
  const m = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(res.headers.get('content-range')?.trim() ?? '')
  return m ? Number(m[1]) : undefined
}

function rangeTotal(res: Response): number | undefined {
  const m = /^bytes \d+-\d+\/(\d+)$/.exec(res.headers.get('content-range')?.trim() ?? '')
  return m ? Number(m[1]) : undefined
}

/** If-Range needs a strong validator: a strong ETag, else Last-Modified. */
function strongValidator(res: Response): string | undefined {
  const etag = res.headers.get('etag')
  if (etag && !etag.startsWith('W/')) return etag
  return res.headers.get('last-modified') ?? undefined
}

async function readMeta(file: string): Promise<PartMeta | undefined> {
  try {
    const m = JSON.parse(await readFile(file, 'utf8')) as PartMeta
    return typeof m.url === 'string' && typeof m.validator === 'string' ? m : undefined
  } catch {
    return undefined
  }
}

async function sizeOf(file: string): Promise<number> {
  return stat(file).then((s) => (s.isFile() ? s.size : 0), () => 0)
}

async function clear(part: string, meta: string): Promise<void> {
  await rm(part, { force: true })
  await rm(meta, { force: true })
}

function networkReason(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } })?.cause
  return cause?.code ?? cause?.message ?? (err instanceof Error ? err.message : String(err))
}
