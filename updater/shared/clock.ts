/** Time, passed in so tests can move it (cache ages, rate-limit resets, session expiry, timeouts, polls). */
export interface Clock {
  now(): Date
  /** Resolves after `ms` (at once when `signal` aborts). */
  sleep(ms: number, signal?: AbortSignal): Promise<void>
}

export const systemClock: Clock = {
  now: () => new Date(),
  sleep: (ms, signal) =>
    new Promise((resolve) => {
      // The listener goes when the timer fires: a long soak sleeps hundreds of times on one signal.
      const onAbort = () => {
        clearTimeout(t)
        resolve()
      }
      const t = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort)
        resolve()
      }, ms)
      signal?.addEventListener('abort', onAbort, { once: true })
    }),
}
