import type { MiddlewareHandler } from 'hono'
import { csrf } from 'hono/csrf'
import { HTTPException } from 'hono/http-exception'
import { UpdateError } from '../../updater/shared/errors'
import { requestOrigin } from '../request-info'

const SAFE_METHOD = /^(GET|HEAD|OPTIONS)$/

/** No body at all: no Content-Type, no Content-Length above 0, not chunked. */
function hasNoBody(c: Parameters<MiddlewareHandler>[0]): boolean {
  const length = c.req.header('content-length')
  return c.req.header('content-type') === undefined && (length === undefined || length.trim() === '0') && c.req.header('transfer-encoding') === undefined
}

/**
 * CSRF protection for every mutating request: hono's `csrf` (Origin / Sec-Fetch-Site check)
 * with the origin a local proxy reports. hono checks only the content types a cross-site form
 * can send; a request that says outright it is cross-site is refused whatever its type.
 *
 * A POST with no body and no Content-Type (`curl -X POST …/api/auth/logout`) that does not say
 * it is cross-site passes: hono would take it for text/plain and refuse it for lacking an
 * Origin. Browsers send Origin (and Sec-Fetch-Site) with every cross-origin fetch, which the
 * first check refuses, and a form always has a Content-Type, which hono checks; a bodyless
 * request with neither header comes from a program holding the cookie itself, not from a page.
 */
export function csrfProtection(): MiddlewareHandler {
  const isSameOrigin = (origin: string, c: Parameters<MiddlewareHandler>[0]) => origin.toLowerCase() === requestOrigin(c)
  const check = csrf({ origin: isSameOrigin, secFetchSite: 'same-origin' })
  const refuse = () =>
    new UpdateError('FORBIDDEN', 'cross-site request refused', {
      hint: 'changes can only be made from the Upkeep web UI itself (same origin); API clients send Content-Type: application/json without a foreign Origin',
    })

  return async (c, next) => {
    if (SAFE_METHOD.test(c.req.method)) return next()
    const site = c.req.header('sec-fetch-site')
    const origin = c.req.header('origin')
    if ((site !== undefined && site !== 'same-origin' && site !== 'none') || (origin !== undefined && !isSameOrigin(origin, c) && site !== 'same-origin')) {
      throw refuse()
    }
    if (hasNoBody(c)) return next()
    try {
      // Validate only: the handler after it runs outside this try.
      await check(c, async () => {})
    } catch (err) {
      if (err instanceof HTTPException && err.status === 403) throw refuse()
      throw err
    }
    return next()
  }
}
