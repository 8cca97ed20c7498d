import type { MiddlewareHandler } from 'hono'
import { getCookie } from 'hono/cookie'
import { UpdateError } from '../../updater/shared/errors'
import type { AuthService } from '../services/auth'

export const SESSION_COOKIE = 'upkeep_session'

/** API paths that answer without a session: what the updater polls, and logging in itself. */
export const PUBLIC_API_PATHS: readonly string[] = ['/api/health', '/api/auth/login', '/api/auth/logout', '/api/auth/session']

/** Every `/api` request but the public ones needs an admin session; 401 JSON otherwise. */
export function requireAdmin(auth: Pick<AuthService, 'verify'>): MiddlewareHandler {
  return async (c, next) => {
    if (PUBLIC_API_PATHS.includes(c.req.path)) return next()
    const token = getCookie(c, SESSION_COOKIE)
    if (token && (await auth.verify(token))) return next()
    throw new UpdateError('UNAUTHORIZED', 'log in first', { hint: 'POST /api/auth/login with {"password": "…"} (the admin password; `upkeep set-password` sets it)' })
  }
}
