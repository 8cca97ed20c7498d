import type { ContentfulStatusCode } from 'hono/utils/http-status'
import { HTTPException } from 'hono/http-exception'
import type { Context } from 'hono'
import { UpdateError, type UpdateErrorCode } from '../updater/shared/errors'
import type { Logger } from '../updater/shared/log'

/** The HTTP status each error code is answered with; 500 for anything not listed. */
const STATUS: Partial<Record<UpdateErrorCode, ContentfulStatusCode>> = {
  BAD_REQUEST: 400,
  BAD_VERSION: 400,
  BAD_REPO: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  TAG_NOT_FOUND: 404,
  LOCKED: 409,
  UPDATE_RUNNING: 409,
  DIRTY_WORKTREE: 409,
  NOT_NEWER: 409,
  NO_RELEASE: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNKNOWN_HOST: 421,
  RATE_LIMITED: 429,
  UPSTREAM_ERROR: 502,
  BUSY: 503,
  DISK_FULL: 507,
}

export function statusFor(code: UpdateErrorCode): ContentfulStatusCode {
  return STATUS[code] ?? 500
}

/** The app's one error handler: known errors answer `{ error: { code, message, hint } }`, the rest 500 without internals. */
export function errorHandler(log: Logger) {
  return (err: Error, c: Context) => {
    if (err instanceof UpdateError) {
      return c.json({ error: err.toJSON() }, statusFor(err.code))
    }
    if (err instanceof HTTPException) {
      const status = err.status as ContentfulStatusCode
      const code: UpdateErrorCode = status === 401 ? 'UNAUTHORIZED' : status === 403 ? 'FORBIDDEN' : status === 404 ? 'NOT_FOUND' : status < 500 ? 'BAD_REQUEST' : 'INTERNAL'
      return c.json({ error: { code, message: err.message || 'request failed' } }, status)
    }
    log.error({ err, method: c.req.method, path: c.req.path }, 'unhandled error')
    return c.json({ error: { code: 'INTERNAL' as const, message: 'internal server error' } }, 500)
  }
}
