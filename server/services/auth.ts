import type { AtomicWriteOptions } from '../../updater/shared/atomic-write'
import { UpdateError } from '../../updater/shared/errors'
import type { Logger } from '../../updater/shared/log'
import type { Clock } from '../../updater/shared/clock'
import { createFairQueue, QueueFullError, type FairQueue } from './fair-queue'
import { createLoginThrottle, type LoginThrottle } from './login-throttle'
import { passwordEpoch, readAdminPassword, verifyPassword } from './password'
import { fileSessions, type Session, type SessionStore } from './sessions'

export type LoginResult =
  | { ok: true; token: string; expiresAt: string }
  | { ok: false; reason: 'wrong-password' }
  | { ok: false; reason: 'throttled'; retryAt: Date }
  /** Too many passwords are being checked right now (from many clients); nothing was counted. */
  | { ok: false; reason: 'busy'; retryAfterMs: number }
  /** The client went away before its password was checked; nothing was counted. */
  | { ok: false; reason: 'abandoned' }

export interface AuthService {
  /** Checks the admin password (throttled per client) and makes a session; `signal`: the client left. */
  login(password: string, client: string, signal?: AbortSignal): Promise<LoginResult>
  /** The live session for a cookie value: not expired, made under the current password. */
  verify(token: string): Promise<Session | undefined>
  logout(token: string): Promise<void>
}

export interface AuthDeps {
  passwordFile: string
  sessionsFile: string
  clock: Clock
  log: Logger
  throttle?: LoginThrottle
  /** Where password checks wait for one of the few scrypt slots (default: PASSWORD_CHECKS). */
  checks?: FairQueue
  /** The password check itself (default: scrypt, `verifyPassword`); a seam to count what reaches it. */
  verify?: (password: string, hash: string) => Promise<boolean>
  write?: AtomicWriteOptions
}

/**
 * scrypt (32 MiB, a few hundred ms of one core) runs in libuv's thread pool (4 threads), which
 * file reads share. One check at a time leaves the other threads, and on a small server the
 * other core, to everything else; a short queue bounds how long a login waits.
 */
export const PASSWORD_CHECKS = { concurrency: 1, maxWaiting: 16, retryAfterMs: 2000 } as const

export function createAuth(deps: AuthDeps): AuthService {
  const sessions: SessionStore = fileSessions(deps.sessionsFile, { clock: deps.clock, log: deps.log, write: deps.write })
  const throttle = deps.throttle ?? createLoginThrottle(deps.clock)
  const checks = deps.checks ?? createFairQueue(PASSWORD_CHECKS)
  const verify = deps.verify ?? verifyPassword
  const refusalLogged = new Map<string, number>()

  // Re-read on each use: `upkeep set-password` (another process) replaces the file.
  async function currentHash(): Promise<string> {
    const admin = await readAdminPassword(deps.passwordFile)
    if (!admin) throw new UpdateError('INTERNAL', 'no admin password is set', { hint: 'run `upkeep set-password`, or restart the server to create one' })
    return admin.hash
  }

  return {
    async login(password, client, signal) {
      // Reserved before anything is awaited: concurrent attempts each take a place in the budget.
      const reservation = throttle.reserve(client)
      if (!reservation.ok) {
        // Once per client and block, not per request: a flood must not flood the journal too.
        if (refusalLogged.get(client) !== reservation.retryAt.getTime()) {
          refusalLogged.delete(client)
          refusalLogged.set(client, reservation.retryAt.getTime())
          if (refusalLogged.size > 10_000) refusalLogged.delete(refusalLogged.keys().next().value!)
          deps.log.warn({ client, until: reservation.retryAt.toISOString() }, 'login refused: too many failed attempts')
        }
        return { ok: false, reason: 'throttled', retryAt: reservation.retryAt }
      }
      const { attempt } = reservation
      let hash: string
      let right: boolean
      try {
        hash = await currentHash()
        right = await checks.run(client, () => verify(password, hash), signal)
      } catch (err) {
        // The password was not checked: the attempt is given back.
        attempt.cancelled()
        if (err instanceof QueueFullError) {
          deps.log.warn({ client }, 'login refused: too many password checks waiting')
          return { ok: false, reason: 'busy', retryAfterMs: err.retryAfterMs }
        }
        if (signal?.aborted) return { ok: false, reason: 'abandoned' }
        throw err
      }
      if (!right) {
        attempt.failed()
        deps.log.warn({ client }, 'login failed: wrong password')
        return { ok: false, reason: 'wrong-password' }
      }
      attempt.succeeded()
      const { token, session } = await sessions.create(passwordEpoch(hash))
      deps.log.info({ client }, 'logged in')
      return { ok: true, token, expiresAt: session.expiresAt }
    },
    async verify(token) {
      if (!token || token.length > 200) return undefined
      const session = await sessions.find(token)
      if (!session) return undefined
      return session.epoch === passwordEpoch(await currentHash()) ? session : undefined
    },
    async logout(token) {
      if (token && token.length <= 200) await sessions.delete(token)
    },
  }
}
