/**
 * Takes turns of the event loop: at most `perTurn` callers go on per turn, in the order they
 * asked. Event streams write through it: 200 of them woken by one event, or replaying a long
 * log, then share the loop with every other request a few chunks at a time.
 */
export interface Turns {
  /** Resolves on a later turn of the event loop, when it is this caller's go. */
  next(): Promise<void>
  /** Callers waiting for their go. */
  readonly waiting: number
}

export function createTurns(perTurn: number): Turns {
  const queue: (() => void)[] = []
  let scheduled = false
  const schedule = () => {
    if (scheduled) return
    scheduled = true
    setImmediate(pump)
  }
  function pump() {
    scheduled = false
    for (const go of queue.splice(0, perTurn)) go()
    // Those let go now ask again from their promise callbacks, after this: a later turn.
    if (queue.length) schedule()
  }
  return {
    next() {
      return new Promise<void>((resolve) => {
        queue.push(resolve)
        schedule()
      })
    },
    get waiting() {
      return queue.length
    },
  }
}
