import { describe, expect, test } from 'vitest'
import { dismissBanner, isBannerDismissed } from '../../web/src/lib/banner-dismissal'
import { formatDuration, timeAgo, timeUntil } from '../../web/src/lib/time'

function memoryStorage() {
  const m = new Map<string, string>()
  return { getItem: (k: string) => m.get(k) ?? null, setItem: (k: string, v: string) => void m.set(k, v) }
}

describe('banner dismissal', () => {
  test('hidden for the dismissed version, shown again for a newer one', () => {
    const s = memoryStorage()
    expect(isBannerDismissed('1.1.0', s)).toBe(false)
    dismissBanner('1.1.0', s)
    expect(isBannerDismissed('1.1.0', s)).toBe(true)
    expect(isBannerDismissed('1.2.0', s)).toBe(false)
  })
  test('a storage that throws shows the banner', () => {
    const broken = { getItem: () => { throw new Error('denied') }, setItem: () => { throw new Error('denied') } }
    expect(isBannerDismissed('1.1.0', broken)).toBe(false)
    expect(() => dismissBanner('1.1.0', broken)).not.toThrow()
  })
})

describe('time formatting', () => {
  const now = Date.parse('2026-11-23T12:00:00Z')
  test.each([
    ['2026-11-23T11:59:50Z', 'just now'],
    ['2026-11-23T11:59:00Z', '1 minute ago'],
    ['2026-11-23T11:48:00Z', '12 minutes ago'],
    ['2026-11-23T09:00:00Z', '3 hours ago'],
    ['2026-11-20T12:00:00Z', '3 days ago'],
  ])('timeAgo(%s) = %s', (iso, text) => expect(timeAgo(iso, now)).toBe(text))
  test('timeAgo of nothing', () => expect(timeAgo(undefined, now)).toBe('never'))
  test.each([
    ['2026-11-23T12:00:10Z', 'now'],
    ['2026-11-23T12:20:00Z', 'in 20 minutes'],
    ['2026-11-23T14:00:00Z', 'in 2 hours'],
  ])('timeUntil(%s) = %s', (iso, text) => expect(timeUntil(iso, now)).toBe(text))
  test.each([
    [250, '250 ms'],
    [1234, '1.2 s'],
    [42_000, '42 s'],
    [65_000, '1 min 5 s'],
  ])('formatDuration(%d) = %s', (ms, text) => expect(formatDuration(ms)).toBe(text))
})
