import type { SchedulerClock } from '../../server/services/auto-update/scheduler'

// A scheduler clock that moves only when told: days pass in milliseconds, and every minute tick
// and window start in between happens, in order.

export interface ManualClock extends SchedulerClock {
  set(t: string): void
  /** Moves to `t`, waking each sleeper at its time and waiting until the scheduler sleeps again. */
  advanceTo(t: string): Promise<void>
  /** Resolves when someone is sleeping on this clock. */
  untilSleeping(): Promise<void>
  sleeps: number[]
}

export function manualClock(start: string): ManualClock {
  let now = Date.parse(start)
  let sleeper: { until: number; wake: () => void } | undefined
  let onSleep: (() => void)[] = []
  const clock: ManualClock = {
    sleeps: [],
    now: () => new Date(now),
    set(t) {
      now = Date.parse(t)
    },
    sleep(ms, signal) {
      return new Promise<void>((resolve) => {
        clock.sleeps.push(now + ms)
        const onAbort = () => resolve()
        sleeper = {
          until: now + ms,
          wake: () => {
            signal.removeEventListener('abort', onAbort)
            resolve()
          },
        }
        signal.addEventListener('abort', onAbort, { once: true })
        for (const f of onSleep) f()
        onSleep = []
      })
    },
    untilSleeping() {
      return sleeper ? Promise.resolve() : new Promise<void>((r) => onSleep.push(r))
    },
    async advanceTo(t) {
      const target = Date.parse(t)
      await clock.untilSleeping()
      while (sleeper && sleeper.until <= target) {
        const s = sleeper
        sleeper = undefined
        now = Math.max(now, s.until)
        const slept = clock.untilSleeping()
        s.wake()
        await slept
      }
      now = target
    },
  }
  return clock
}
