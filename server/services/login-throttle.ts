import type { Clock } from '../../updater/shared/clock'

export const MAX_FAILED_LOGINS = 5
export const LOGIN_WINDOW_MS = 15 * 60 * 1000
const MAX_TRACKED_CLIENTS = 10_000

/** One password attempt that holds its place in the client's budget until it is settled. */
export interface LoginAttempt {
  /** The password was wrong: the attempt stays counted for the window. */
  failed(): void
  /** The password was right: the client's settled failures are forgiven. */
  succeeded(): void
  /** The password was never checked (the client left, the server was busy): the attempt is given back. */
  cancelled(): void
}

export type Reservation = { ok: true; attempt: LoginAttempt } | { ok: false; retryAt: Date }

export interface LoginThrottle {
  /** Takes one attempt from `client`'s budget before its password is checked, or says when it may try again. */
  reserve(client: string): Reservation
}

interface Entry {
  at: number
  pending: boolean
}

/**
 * At most `MAX_FAILED_LOGINS` wrong passwords per client in `LOGIN_WINDOW_MS`; after that every
 * attempt, even with the right password, is refused until the oldest failure leaves the window.
 * An attempt counts as a failure from the moment it is reserved (before scrypt runs), so any
 * number of concurrent attempts gets no more than the limit checked: check-then-act would let
 * all of them through while the first ones were still hashing.
 * In memory: a restart forgets it, which costs a guesser a server restart per five tries.
 */
export function createLoginThrottle(clock: Clock, opts: { maxFailures?: number; windowMs?: number } = {}): LoginThrottle {
  const max = opts.maxFailures ?? MAX_FAILED_LOGINS
  const windowMs = opts.windowMs ?? LOGIN_WINDOW_MS
  const entries = new Map<string, Entry[]>()

  // Pending attempts never expire: they are settled (or given back) by their request.
  const recent = (client: string): Entry[] => {
    const now = clock.now().getTime()
    const list = (entries.get(client) ?? []).filter((e) => e.pending || now - e.at < windowMs)
    if (list.length) entries.set(client, list)
    else entries.delete(client)
    return list
  }

  const remove = (client: string, entry: Entry) => {
    const list = entries.get(client)
    const i = list ? list.indexOf(entry) : -1
    if (i >= 0) list!.splice(i, 1)
    if (list && !list.length) entries.delete(client)
  }

  return {
    reserve(client) {
      const list = recent(client)
      if (list.length >= max) {
        const oldest = list.map((e) => e.at).sort((a, b) => a - b)[list.length - max]!
        return { ok: false, retryAt: new Date(oldest + windowMs) }
      }
      const entry: Entry = { at: clock.now().getTime(), pending: true }
      list.push(entry)
      entries.set(client, list)
      if (entries.size > MAX_TRACKED_CLIENTS) {
        // Forget the oldest client (Map keeps insertion order) rather than grow without bound.
        entries.delete(entries.keys().next().value!)
      }
      let settled = false
      const settle = (fn: () => void) => {
        if (settled) return
        settled = true
        fn()
      }
      return {
        ok: true,
        attempt: {
          failed: () =>
            settle(() => {
              entry.pending = false
              entry.at = clock.now().getTime()
              // A success meanwhile dropped it; a wrong password still counts.
              const now = entries.get(client) ?? []
              if (!now.includes(entry)) entries.set(client, [...now, entry])
            }),
          succeeded: () =>
            settle(() => {
              // Other attempts still in flight keep their places: they are checked after this one.
              const rest = (entries.get(client) ?? []).filter((e) => e.pending && e !== entry)
              if (rest.length) entries.set(client, rest)
              else entries.delete(client)
            }),
          cancelled: () => settle(() => remove(client, entry)),
        },
      }
    },
  }
}
