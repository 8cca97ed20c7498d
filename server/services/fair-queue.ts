/** Too many tasks wait already: try again later (`retryAfterMs`). */
export class QueueFullError extends Error {
  override name = 'QueueFullError'
  constructor(readonly retryAfterMs: number) {
    super('too many tasks are waiting')
  }
}

export interface FairQueue {
  /**
   * Runs `task` once a slot is free and no other task of `key` runs. Rejects with
   * `QueueFullError` when `maxWaiting` tasks wait already, and with the signal's reason when
   * `signal` aborts while the task still waits. A task that started is never abandoned: it
   * keeps its slot until it ends (the work it started, e.g. in libuv's thread pool, goes on).
   */
  run<T>(key: string, task: () => Promise<T>, signal?: AbortSignal): Promise<T>
  /** Tasks running and waiting now. */
  stats(): { running: number; waiting: number }
}

interface Waiter {
  key: string
  start(): void
}

export interface FairQueueOptions {
  /** Tasks run at once, over all keys. */
  concurrency: number
  /** Tasks that may wait, over all keys; more are refused. */
  maxWaiting: number
  /** What `QueueFullError.retryAfterMs` says. */
  retryAfterMs?: number
}

/**
 * A bounded queue for expensive work (scrypt): `concurrency` tasks at a time, one per key (a
 * client), and the next one from the key that has waited longest since its last start. So one
 * client's flood holds a single slot, and another client's task is next in line, not behind it.
 * Written here because queues on npm (p-queue, p-limit) neither run one task per key nor keep
 * a slot for a started task whose caller aborted.
 */
export function createFairQueue(opts: FairQueueOptions): FairQueue {
  let running = 0
  const runningKeys = new Set<string>()
  const waiting: Waiter[] = []
  // When each key last started a task: the key that waited longest since goes first (round robin).
  let started = 0
  const lastStarted = new Map<string, number>()

  const canStart = (key: string) => running < opts.concurrency && !runningKeys.has(key)

  function begin(key: string) {
    running++
    runningKeys.add(key)
    lastStarted.set(key, started++)
  }

  /** The waiter to start next: of the keys not running, the one whose last start is oldest (never: first). */
  function pick(): number {
    let best = -1
    let bestRank = Infinity
    waiting.forEach((w, i) => {
      const rank = lastStarted.get(w.key) ?? -1
      if (!runningKeys.has(w.key) && rank < bestRank) [best, bestRank] = [i, rank]
    })
    return best
  }

  function end(key: string) {
    running--
    runningKeys.delete(key)
    if (!waiting.some((w) => w.key === key)) lastStarted.delete(key)
    for (let i = pick(); i >= 0 && running < opts.concurrency; i = pick()) waiting.splice(i, 1)[0]!.start()
  }

  async function execute<T>(key: string, task: () => Promise<T>): Promise<T> {
    try {
      return await task()
    } finally {
      end(key)
    }
  }

  return {
    run(key, task, signal) {
      signal?.throwIfAborted()
      if (canStart(key)) {
        begin(key)
        return execute(key, task)
      }
      if (waiting.length >= opts.maxWaiting) return Promise.reject(new QueueFullError(opts.retryAfterMs ?? 1000))
      return new Promise((resolve, reject) => {
        const onAbort = () => {
          const i = waiting.indexOf(waiter)
          if (i >= 0) waiting.splice(i, 1)
          reject(signal!.reason)
        }
        const waiter: Waiter = {
          key,
          start() {
            signal?.removeEventListener('abort', onAbort)
            begin(key)
            execute(key, task).then(resolve, reject)
          },
        }
        waiting.push(waiter)
        signal?.addEventListener('abort', onAbort, { once: true })
      })
    },
    stats: () => ({ running, waiting: waiting.length }),
  }
}
