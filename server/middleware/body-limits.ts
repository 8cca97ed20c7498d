import type { MiddlewareHandler } from 'hono'
import { bodyLimit } from 'hono/body-limit'
import { UpdateError } from '../../updater/shared/errors'

/** A login is `{"password": "…"}` (at most 1024 characters). */
export const LOGIN_BODY_LIMIT = 4 * 1024
/** Every other JSON body (settings, an update request) is far smaller. */
export const JSON_BODY_LIMIT = 64 * 1024

/**
 * Refuses a bigger body with 413 before a handler reads it: at once when Content-Length says so
 * (nothing of it is read), after `maxSize` bytes of a chunked one. `Connection: close` makes
 * the server drop the rest of the upload instead of reading it to keep the connection.
 */
export function limitBody(maxSize: number): MiddlewareHandler {
  return bodyLimit({
    maxSize,
    onError: (c) => {
      c.header('Connection', 'close')
      throw new UpdateError('PAYLOAD_TOO_LARGE', `the request body is larger than ${maxSize} bytes`, { hint: 'the API takes small JSON objects only' })
    },
  })
}

/** The limits of /api: the login's small one, then one for every other route. */
export function apiBodyLimits(): MiddlewareHandler {
  const login = limitBody(LOGIN_BODY_LIMIT)
  const other = limitBody(JSON_BODY_LIMIT)
  return (c, next) => (c.req.path === '/api/auth/login' ? login(c, next) : other(c, next))
}
