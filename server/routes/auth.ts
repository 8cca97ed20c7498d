import { setTimeout as sleep } from 'node:timers/promises'
import { Hono } from 'hono'
import { deleteCookie, getCookie, setCookie } from 'hono/cookie'
import { UpdateError } from '../../updater/shared/errors'
import { SESSION_COOKIE } from '../middleware/require-admin'
import { clientAddress, isHttps, readJsonBody } from '../request-info'
import type { AuthService } from '../services/auth'
import type { Clock } from '../../updater/shared/clock'

export interface AuthRoutesDeps {
  auth: AuthService
  clock: Clock
  /** How long a throttled login waits for its 429 (default THROTTLED_ANSWER_DELAY_MS). */
  throttledDelayMs?: number
}

/**
 * A throttled client's answer is held this long: a flood over a few connections then costs the
 * server a few requests a second per connection, not hundreds. The client's budget is spent
 * anyway, so the wait takes nothing from a person who mistyped.
 */
export const THROTTLED_ANSWER_DELAY_MS = 500

/** `POST /login`, `POST /logout`, `GET /session` under /api/auth. */
export function authRoutes({ auth, clock, throttledDelayMs = THROTTLED_ANSWER_DELAY_MS }: AuthRoutesDeps) {
  return new Hono()
    .post('/login', async (c) => {
      const body = await readJsonBody(c)
      if (typeof body.password !== 'string' || !body.password) throw new UpdateError('BAD_REQUEST', 'send {"password": "…"}')
      const result = await auth.login(body.password, clientAddress(c), c.req.raw.signal)
      if (!result.ok && (result.reason === 'busy' || result.reason === 'abandoned')) {
        c.header('Retry-After', String(Math.ceil((result.reason === 'busy' ? result.retryAfterMs : 1000) / 1000)))
        throw new UpdateError('BUSY', 'too many logins are being checked right now', { hint: 'log in again after the seconds Retry-After says' })
      }
      if (!result.ok && result.reason === 'throttled') {
        // Ends early when the client leaves (no timer outlives its request).
        await sleep(throttledDelayMs, undefined, { signal: c.req.raw.signal }).catch(() => {})
        const seconds = Math.max(1, Math.ceil((result.retryAt.getTime() - clock.now().getTime()) / 1000))
        c.header('Retry-After', String(seconds))
        throw new UpdateError('RATE_LIMITED', `too many failed logins; try again in ${Math.ceil(seconds / 60)} min`, {
          hint: 'forgot the password? `upkeep set-password` on the server sets a new one',
        })
      }
      if (!result.ok) throw new UpdateError('UNAUTHORIZED', 'wrong password')
      const maxAge = Math.floor((Date.parse(result.expiresAt) - clock.now().getTime()) / 1000)
      setCookie(c, SESSION_COOKIE, result.token, { path: '/', httpOnly: true, sameSite: 'Strict', secure: isHttps(c), maxAge })
      c.header('Cache-Control', 'no-store')
      return c.json({ authenticated: true as const, expiresAt: result.expiresAt })
    })
    .post('/logout', async (c) => {
      const token = getCookie(c, SESSION_COOKIE)
      if (token) await auth.logout(token)
      deleteCookie(c, SESSION_COOKIE, { path: '/', httpOnly: true, sameSite: 'Strict', secure: isHttps(c) })
      return c.json({ authenticated: false as const })
    })
    .get('/session', async (c) => {
      c.header('Cache-Control', 'no-store')
      const token = getCookie(c, SESSION_COOKIE)
      const session = token ? await auth.verify(token) : undefined
      return session ? c.json({ authenticated: true as const, expiresAt: session.expiresAt }) : c.json({ authenticated: false as const })
    })
}
