import type { MiddlewareHandler } from 'hono'
import { csrf } from 'hono/csrf'
import { HTTPException } from 'hono/http-exception'
import { UpdateError } from '../../updater/shared/errors'
import { requestOrigin } from '../request-info'

const SAFE_METHOD = /^(GET|HEAD|OPTIONS)$/

/**
 * CSRF protection for every mutating request: hono's `csrf` (Origin / Sec-Fetch-Site check)
 * with the origin a local proxy reports. hono checks only the content types a cross-site form
 * can send; a request that says outright it is cross-site is refused whatever its type.
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
