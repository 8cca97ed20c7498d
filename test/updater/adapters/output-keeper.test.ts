import { expect, test } from 'vitest'
import { OutputKeeper } from '../../../updater/adapters/exec'

test('a long output keeps its first 40 lines (where a cause usually is) and its last 60, and says how many it dropped', () => {
  const k = new OutputKeeper()
  for (let i = 1; i <= 500; i++) k.push(`line ${i}`)
  const lines = k.lines()
  expect(lines.slice(0, 2)).toEqual(['line 1', 'line 2'])
  expect(lines[39]).toBe('line 40')
  expect(lines[40]).toBe('… (400 lines not kept) …')
  expect(lines.at(-1)).toBe('line 500')
  expect(lines).toHaveLength(101)
})

test('a short output is kept whole', () => {
  const k = new OutputKeeper()
  for (let i = 1; i <= 70; i++) k.push(`line ${i}`)
  expect(k.lines()).toEqual(Array.from({ length: 70 }, (_, i) => `line ${i + 1}`))
})
