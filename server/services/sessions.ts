import { createHash, randomBytes } from 'node:crypto'
import { stat } from 'node:fs/promises'
import { writeJsonAtomic, type AtomicWriteOptions } from '../../updater/shared/atomic-write'
import { readDataFile } from '../../updater/shared/data-file'
import { writeFailed } from '../../updater/shared/errors'
import type { Logger } from '../../updater/shared/log'
import type { Clock } from '../../updater/shared/clock'

/** How long a login lasts. */
export const SESSION_TTL_MS = 7 * 24 * 60 * 60 * 1000
/** About 20,000 sessions (~200 bytes each); expired ones are dropped on every write. */
const MAX_SESSIONS_BYTES = 4 << 20

export interface Session {
  /** sha256 of the token: the file never holds a token that could be replayed. */
  id: string
  /** `passwordEpoch` of the password it was made with; a new password ends it. */
  epoch: string
  createdAt: string
  expiresAt: string
}

export interface SessionStore {
  /** Makes a session and returns its token (the cookie value). */
  create(epoch: string): Promise<{ token: string; session: Session }>
  find(token: string): Promise<Session | undefined>
  delete(token: string): Promise<void>
}

const idOf = (token: string) => createHash('sha256').update(token).digest('hex')

/**
 * Sessions in `data/sessions.json` (0600), so a login survives the server's restart mid-update.
 * The server is the only writer; the file is re-read when it changed on disk (a restart
 * overlapping with the old process's last requests).
 */
export function fileSessions(file: string, opts: { clock: Clock; log: Logger; write?: AtomicWriteOptions }): SessionStore {
  let sessions: Map<string, Session> | undefined
  let loadedStamp = ''
  let queue: Promise<unknown> = Promise.resolve()

  async function stampOf(): Promise<string> {
    try {
      const s = await stat(file)
      return `${s.ino}:${s.size}:${s.mtimeMs}`
    } catch {
      return 'missing'
    }
  }

  async function load(): Promise<Map<string, Session>> {
    const stamp = await stampOf()
    if (sessions && stamp === loadedStamp) return sessions
    const next = new Map<string, Session>()
    if (stamp !== 'missing') {
      try {
        // Not a symlink, FIFO or huge file (refused like bad JSON below): the server must never hang here.
        const parsed = JSON.parse((await readDataFile(file, { maxBytes: MAX_SESSIONS_BYTES })) ?? '{}') as { sessions?: unknown }
        for (const s of Array.isArray(parsed.sessions) ? (parsed.sessions as Session[]) : []) {
          if (s && typeof s.id === 'string' && typeof s.epoch === 'string' && typeof s.expiresAt === 'string') next.set(s.id, s)
        }
      } catch (err) {
        // Everyone logs in again; nothing else depends on this file.
        opts.log.warn({ file, err: err instanceof Error ? err.message : err }, 'sessions file unreadable; starting without sessions')
      }
    }
    sessions = next
    loadedStamp = stamp
    return next
  }

  const isLive = (s: Session) => Date.parse(s.expiresAt) > opts.clock.now().getTime()

  function change(fn: (all: Map<string, Session>) => void): Promise<void> {
    const run = queue.then(async () => {
      const all = await load()
      fn(all)
      for (const [id, s] of all) if (!isLive(s)) all.delete(id)
      await writeJsonAtomic(file, { sessions: [...all.values()] }, { ...opts.write, mode: 0o600 }).catch((err) => {
        sessions = undefined // memory may be ahead of the file now; read it again next time
        throw writeFailed('the session', err)
      })
      loadedStamp = await stampOf()
    })
    queue = run.catch(() => {})
    return run
  }

  return {
    async create(epoch) {
      const token = randomBytes(32).toString('base64url')
      const now = opts.clock.now()
      const session: Session = { id: idOf(token), epoch, createdAt: now.toISOString(), expiresAt: new Date(now.getTime() + SESSION_TTL_MS).toISOString() }
      await change((all) => all.set(session.id, session))
      return { token, session }
    },
    async find(token) {
      const s = (await load()).get(idOf(token))
      return s && isLive(s) ? s : undefined
    },
    async delete(token) {
      const id = idOf(token)
      if (!(await load()).has(id)) return
      await change((all) => all.delete(id))
    },
  }
}
