import type { Clock } from './clock'

export const MAX_FAILED_LOGINS = 5
export const LOGIN_WINDOW_MS = 15 * 60 * 1000
const MAX_TRACKED_CLIENTS = 10_000

export interface LoginThrottle {
  /** undefined when `client` may try a password now, else when it may try again. */
  blockedUntil(client: string): Date | undefined
  failed(client: string): void
  succeeded(client: string): void
}

/**
 * At most `MAX_FAILED_LOGINS` wrong passwords per client in `LOGIN_WINDOW_MS`; after that every
 * attempt, even with the right password, is refused until the oldest failure leaves the window.
 * In memory: a restart forgets it, which costs a guesser a server restart per five tries.
 */
export function createLoginThrottle(clock: Clock, opts: { maxFailures?: number; windowMs?: number } = {}): LoginThrottle {
  const max = opts.maxFailures ?? MAX_FAILED_LOGINS
  const windowMs = opts.windowMs ?? LOGIN_WINDOW_MS
  const failures = new Map<string, number[]>()

  const recent = (client: string): number[] => {
    const now = clock.now().getTime()
    const list = (failures.get(client) ?? []).filter((t) => now - t < windowMs)
    if (list.length) failures.set(client, list)
    else failures.delete(client)
    return list
  }

  return {
    blockedUntil(client) {
      const list = recent(client)
      return list.length >= max ? new Date(list[list.length - max]! + windowMs) : undefined
    },
    failed(client) {
      const list = recent(client)
      list.push(clock.now().getTime())
      failures.set(client, list.slice(-max))
      if (failures.size > MAX_TRACKED_CLIENTS) {
        // Forget the oldest entry (Map keeps insertion order) rather than grow without bound.
        failures.delete(failures.keys().next().value!)
      }
    },
    succeeded(client) {
      failures.delete(client)
    },
  }
}
