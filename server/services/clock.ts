/** Time, passed in so tests can move it (cache ages, rate-limit resets, session expiry). */
export interface Clock {
  now(): Date
}

export const systemClock: Clock = { now: () => new Date() }
