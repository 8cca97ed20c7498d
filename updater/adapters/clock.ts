export interface Clock {
  now(): Date
  sleep(ms: number, signal?: AbortSignal): Promise<void>
}

export function createClock(): Clock {
  return {
    now: () => new Date(),
    sleep: (ms, signal) =>
      new Promise((resolve) => {
        const t = setTimeout(resolve, ms)
        signal?.addEventListener('abort', () => {
          clearTimeout(t)
          resolve()
        }, { once: true })
      }),
  }
}
