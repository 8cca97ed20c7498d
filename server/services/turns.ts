/**
 * Takes turns of the event loop: at most `perTurn` callers go on per turn, in the order they
 * asked. A write that fits a socket's buffer needs no turn of its own, so 200 event streams
 * replaying a long log would each keep the loop for as long as their replay takes; through this,
 * every other request is read between a few streams' chunks.
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
