import type { AtomicWriteOptions } from '../../updater/shared/atomic-write'
import { UpdateError } from '../../updater/shared/errors'
import type { Logger } from '../../updater/shared/log'
import type { Clock } from './clock'
import { createLoginThrottle, type LoginThrottle } from './login-throttle'
import { passwordEpoch, readAdminPassword, verifyPassword } from './password'
import { fileSessions, type Session, type SessionStore } from './sessions'

export type LoginResult =
  | { ok: true; token: string; expiresAt: string }
  | { ok: false; reason: 'wrong-password' }
  | { ok: false; reason: 'throttled'; retryAt: Date }

export interface AuthService {
  /** Checks the admin password (throttled per client) and makes a session. */
  login(password: string, client: string): Promise<LoginResult>
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
  write?: AtomicWriteOptions
}

export function createAuth(deps: AuthDeps): AuthService {
  const sessions: SessionStore = fileSessions(deps.sessionsFile, { clock: deps.clock, log: deps.log, write: deps.write })
  const throttle = deps.throttle ?? createLoginThrottle(deps.clock)

  // Re-read on each use: `upkeep set-password` (another process) replaces the file.
  async function currentHash(): Promise<string> {
    const admin = await readAdminPassword(deps.passwordFile)
    if (!admin) throw new UpdateError('INTERNAL', 'no admin password is set', { hint: 'run `upkeep set-password`, or restart the server to create one' })
    return admin.hash
  }

  return {
    async login(password, client) {
      const retryAt = throttle.blockedUntil(client)
      if (retryAt) {
        deps.log.warn({ client }, 'login refused: too many failed attempts')
        return { ok: false, reason: 'throttled', retryAt }
      }
      const hash = await currentHash()
      if (!(await verifyPassword(password, hash))) {
        throttle.failed(client)
        deps.log.warn({ client }, 'login failed: wrong password')
        return { ok: false, reason: 'wrong-password' }
      }
      throttle.succeeded(client)
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
