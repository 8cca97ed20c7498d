// GitHub's rate limits, read the same way by the release checks (server) and the artifact
// downloads (updater): https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api

/** GitHub's advice for a secondary rate limit that names no time: wait at least a minute. */
const DEFAULT_RETRY_MS = 60_000
/** A wait longer than this is taken as a misreading (clock skew, bad header) and capped. */
const MAX_WAIT_MS = 24 * 60 * 60 * 1000

export interface RateLimit {
  /** `x-ratelimit-remaining`, when sent. */
  remaining?: number
  /** `x-ratelimit-reset` (epoch seconds) as a time. */
  reset?: Date
}

export function readRateLimit(headers: Headers): RateLimit {
  const remaining = headers.get('x-ratelimit-remaining')
  const reset = headers.get('x-ratelimit-reset')
  return {
    remaining: remaining !== null && /^\d+$/.test(remaining.trim()) ? Number(remaining) : undefined,
    reset: reset !== null && /^\d+$/.test(reset.trim()) ? new Date(Number(reset) * 1000) : undefined,
  }
}

/** When a 403/429 is a rate limit, the time before which no request may be made; else undefined. */
export function rateLimitedUntil(res: Response, rateLimit: RateLimit, now: Date): Date | undefined {
  const retryAfter = res.headers.get('retry-after')
  if (retryAfter !== null) {
    const secs = /^\d+$/.test(retryAfter.trim()) ? Number(retryAfter) * 1000 : Date.parse(retryAfter) - now.getTime()
    if (Number.isFinite(secs)) return capWait(now, Math.max(secs, 1000))
  }
  if (rateLimit.remaining === 0) return capWait(now, rateLimit.reset ? rateLimit.reset.getTime() - now.getTime() : DEFAULT_RETRY_MS)
  if (res.status === 429) return capWait(now, DEFAULT_RETRY_MS)
  return undefined
}

/** The earliest next request after a response that used up the limit (200/304 with remaining 0). */
export function exhaustedUntil(rateLimit: RateLimit, now: Date): Date | undefined {
  if (rateLimit.remaining !== 0) return undefined
  return capWait(now, rateLimit.reset ? rateLimit.reset.getTime() - now.getTime() : DEFAULT_RETRY_MS)
}

function capWait(now: Date, ms: number): Date {
  return new Date(now.getTime() + Math.min(Math.max(ms, 1000), MAX_WAIT_MS))
}
