import { describe, expect, test } from 'vitest'
import { createTurns } from '../../server/services/turns'

const nextLoopTurn = () => new Promise<void>((r) => setImmediate(r))

describe('turns of the event loop', () => {
  test('a few callers go on per turn, in the order they asked; what else waits for the loop runs between the turns', async () => {
    const turns = createTurns(4)
    const seen: string[] = []
    const callers = Array.from({ length: 10 }, (_, i) => turns.next().then(() => void seen.push(`s${i}`)))
    expect(turns.waiting).toBe(10)
    expect(seen).toEqual([]) // never on the caller's own turn

    for (const other of ['other1', 'other2', 'other3']) {
      await nextLoopTurn()
      seen.push(other)
    }
    await Promise.all(callers)
    expect(seen).toEqual(['s0', 's1', 's2', 's3', 'other1', 's4', 's5', 's6', 's7', 'other2', 's8', 's9', 'other3'])
    expect(turns.waiting).toBe(0)
  })

  test('a caller that goes on and asks again waits behind those already waiting (one long replay does not starve the others)', async () => {
    const turns = createTurns(1)
    const seen: string[] = []
    const long = (async () => {
      for (let chunk = 1; chunk <= 3; chunk++) {
        await turns.next()
        seen.push(`long${chunk}`)
      }
    })()
    const short = turns.next().then(() => void seen.push('short'))
    await Promise.all([long, short])
    expect(seen).toEqual(['long1', 'short', 'long2', 'long3'])
  })
})
