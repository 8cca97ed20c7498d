import { expect, test } from 'vitest'
import { readableLine } from '../../../updater/shared/log'

test.each([
  ['a message with fields', { level: 30, time: Date.UTC(2026, 0, 1, 10, 2, 3, 4), pid: 1, name: 'upkeep', msg: 'listening', url: 'http://127.0.0.1:8080' }, /^\d\d:\d\d:\d\d\.\d{3} INFO  listening url=http:\/\/127\.0\.0\.1:8080\n$/],
  ['an error with an object field', { level: 50, time: 0, msg: 'step failed', err: { code: 'X' } }, / ERROR step failed err=\{"code":"X"\}\n$/],
])('readableLine: %s', (_n, entry, expected) => {
  expect(readableLine(JSON.stringify(entry))).toMatch(expected)
})

test('readableLine passes what is not JSON through', () => {
  expect(readableLine('plain text\n')).toBe('plain text\n')
})
