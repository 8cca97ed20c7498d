import { describe, expect, test } from 'vitest'
import { createFairQueue, QueueFullError } from '../../server/services/fair-queue'

/** A task that runs until `finish()`; `order` records starts. */
function controlled(order: string[]) {
  const finishers = new Map<string, () => void>()
  return {
    task: (name: string) => () =>
      new Promise<string>((resolve) => {
        order.push(name)
        finishers.set(name, () => resolve(name))
      }),
    finish: async (name: string) => {
      finishers.get(name)!()
      // Let the queue start what comes next.
      await new Promise((r) => setImmediate(r))
    },
  }
}

describe('fair queue', () => {
  test('one task per key; the next one from the key that waited longest, not the one that just ran', async () => {
    const order: string[] = []
    const c = controlled(order)
    const q = createFairQueue({ concurrency: 1, maxWaiting: 16 })
    const done = ['a1', 'a2', 'a3'].map((n) => q.run('a', c.task(n)))
    done.push(q.run('b', c.task('b1')), q.run('c', c.task('c1')), q.run('b', c.task('b2')))
    expect(order).toEqual(['a1'])
    expect(q.stats()).toEqual({ running: 1, waiting: 5 })
    for (const name of ['a1', 'b1', 'c1', 'a2', 'b2', 'a3']) await c.finish(name)
    expect(order).toEqual(['a1', 'b1', 'c1', 'a2', 'b2', 'a3'])
    expect(await Promise.all(done)).toEqual(['a1', 'a2', 'a3', 'b1', 'c1', 'b2'])
    expect(q.stats()).toEqual({ running: 0, waiting: 0 })
  })

  test('with two slots, a key never holds both', async () => {
    const order: string[] = []
    const c = controlled(order)
    const q = createFairQueue({ concurrency: 2, maxWaiting: 16 })
    void q.run('a', c.task('a1'))
    void q.run('a', c.task('a2'))
    void q.run('b', c.task('b1'))
    expect(order).toEqual(['a1', 'b1'])
    await c.finish('b1')
    expect(q.stats()).toEqual({ running: 1, waiting: 1 })
    await c.finish('a1')
    expect(order).toEqual(['a1', 'b1', 'a2'])
    await c.finish('a2')
  })

  test('a full queue refuses at once; an aborted waiter leaves without running; a running task keeps its slot', async () => {
    const order: string[] = []
    const c = controlled(order)
    const q = createFairQueue({ concurrency: 1, maxWaiting: 2, retryAfterMs: 1500 })
    const running = new AbortController()
    void q.run('a', c.task('a1'), running.signal)
    const waiter = new AbortController()
    const gone = q.run('b', c.task('b1'), waiter.signal)
    void q.run('c', c.task('c1'))
    await expect(q.run('d', c.task('d1'))).rejects.toEqual(new QueueFullError(1500))
    waiter.abort(new Error('client left'))
    await expect(gone).rejects.toThrow('client left')
    // Aborting the running task's signal does not free its slot: its work goes on until it ends.
    running.abort()
    expect(q.stats()).toEqual({ running: 1, waiting: 1 })
    await c.finish('a1')
    expect(order).toEqual(['a1', 'c1'])
    await c.finish('c1')
  })
})
