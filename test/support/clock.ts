import type { Clock } from '../../updater/shared/clock'

export interface FakeClock extends Clock {
  advance(ms: number): void
  set(time: Date | string): void
}

export const MINUTE = 60_000

/**
 * A clock that moves only when told: cache ages, rate-limit resets and session expiry on demand;
 * `sleep` moves it by the time slept (and yields, so other work runs).
 */
export function fakeClock(start: Date | string = '2026-11-23T10:00:00.000Z'): FakeClock {
  let now = new Date(start).getTime()
  return {
    now: () => new Date(now),
    advance(ms) {
      now += ms
    },
    set(time) {
      now = new Date(time).getTime()
    },
    async sleep(ms) {
      now += ms
      await new Promise((r) => setImmediate(r))
    },
  }
}
