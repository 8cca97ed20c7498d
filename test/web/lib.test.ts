import { describe, expect, test } from 'vitest'
import { pageKey, pathOf, routeOf, updatesPathOf } from '../../web/src/lib/app-routes'
import { dismissBanner, isBannerDismissed } from '../../web/src/lib/banner-dismissal'
import { dismissFailure, isFailureDismissed } from '../../web/src/lib/failure-dismissal'
import { installedFromKey, installedFromSentence, installedFromShort } from '../../web/src/lib/installed-from'
import { formatDuration, timeAgo, timeUntil } from '../../web/src/lib/time'

function memoryStorage() {
  const m = new Map<string, string>()
  return { getItem: (k: string) => m.get(k) ?? null, setItem: (k: string, v: string) => void m.set(k, v) }
}

describe('banner dismissal', () => {
  test('hidden for the dismissed version of that app, shown again for a newer one', () => {
    const s = memoryStorage()
    expect(isBannerDismissed('upkeep', '1.1.0', s)).toBe(false)
    dismissBanner('upkeep', '1.1.0', s)
    expect(isBannerDismissed('upkeep', '1.1.0', s)).toBe(true)
    expect(isBannerDismissed('upkeep', '1.2.0', s)).toBe(false)
  })
  test('per app: dismissing one app\'s version hides nothing of another app', () => {
    const s = memoryStorage()
    dismissBanner('upkeep', '1.1.0', s)
    dismissBanner('notes', '3.1.0', s)
    expect(isBannerDismissed('notes', '3.1.0', s)).toBe(true)
    expect(isBannerDismissed('notes', '1.1.0', s)).toBe(false)
    expect(isBannerDismissed('upkeep', '1.1.0', s)).toBe(true)
    expect(isBannerDismissed('upkeep', '3.1.0', s)).toBe(false)
  })
  test("Upkeep's dismissal from before there were apps still counts, until a newer one replaces it", () => {
    const s = memoryStorage()
    s.setItem('upkeep.banner.dismissedVersion', '1.1.0')
    expect(isBannerDismissed('upkeep', '1.1.0', s)).toBe(true)
    expect(isBannerDismissed('notes', '1.1.0', s)).toBe(false)
    dismissBanner('upkeep', '1.2.0', s)
    expect(isBannerDismissed('upkeep', '1.2.0', s)).toBe(true)
    expect(isBannerDismissed('upkeep', '1.1.0', s)).toBe(false)
  })
  test('a storage that throws, or holds something else under the key, shows the banner', () => {
    const broken = { getItem: () => { throw new Error('denied') }, setItem: () => { throw new Error('denied') } }
    expect(isBannerDismissed('upkeep', '1.1.0', broken)).toBe(false)
    expect(() => dismissBanner('upkeep', '1.1.0', broken)).not.toThrow()
    const odd = memoryStorage()
    odd.setItem('upkeep.banner.dismissed', '["1.1.0"]')
    expect(isBannerDismissed('upkeep', '1.1.0', odd)).toBe(false)
    dismissBanner('upkeep', '1.1.0', odd)
    expect(isBannerDismissed('upkeep', '1.1.0', odd)).toBe(true)
  })
})

describe('failure dismissal', () => {
  test('per app: dismissing the failure of one app keeps another app\'s failure', () => {
    const s = memoryStorage()
    dismissFailure('notes', 'u-notes-1', s)
    expect(isFailureDismissed('notes', 'u-notes-1', s)).toBe(true)
    expect(isFailureDismissed('upkeep', 'u-upkeep-1', s)).toBe(false)
    dismissFailure('upkeep', 'u-upkeep-1', s)
    expect(isFailureDismissed('notes', 'u-notes-1', s)).toBe(true)
    expect(isFailureDismissed('notes', 'u-notes-2', s)).toBe(false)
  })
  test("Upkeep's dismissed failure from before there were apps is still dismissed", () => {
    const s = memoryStorage()
    s.setItem('upkeep.failure.dismissedUpdate', 'u-old')
    expect(isFailureDismissed('upkeep', 'u-old', s)).toBe(true)
    expect(isFailureDismissed('notes', 'u-old', s)).toBe(false)
  })
})

describe('routes', () => {
  test.each([
    ['/', { page: 'overview' }],
    ['/apps', { page: 'apps' }],
    ['/apps/', { page: 'apps' }],
    ['/settings/updates', { page: 'updates', app: 'upkeep' }],
    ['/apps/notes', { page: 'updates', app: 'notes' }],
    ['/apps/upkeep', { page: 'updates', app: 'upkeep' }],
    ['/apps/notes/extra', { page: 'not-found' }],
    ['/apps/%E0%A4%A', { page: 'not-found' }],
    ['/nowhere', { page: 'not-found' }],
  ])('%s', (path, route) => expect(routeOf(path)).toEqual(route))

  test("an app's page address: Upkeep's stays Settings → Software Updates", () => {
    expect(updatesPathOf('upkeep')).toBe('/settings/updates')
    expect(updatesPathOf('notes')).toBe('/apps/notes')
    expect(pathOf(routeOf('/apps/upkeep'))).toBe('/settings/updates')
    expect(pathOf(routeOf('/apps/notes/'))).toBe('/apps/notes')
    expect(pathOf({ page: 'not-found' })).toBeUndefined()
    expect(pageKey(routeOf('/apps/notes'))).not.toBe(pageKey(routeOf('/settings/updates')))
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

describe('how a release was installed, in words', () => {
  const key = 'SHA256:ulkKt2KmCzXq3ZLEZ+BzOFXzc2C1gZ8JmdaVxGqHXlE'
  test.each([
    [{ kind: 'artifact', signer: 'upkeep-release', fingerprint: key }, 'The signed release artifact, verified by upkeep-release (key SHA256:ulkKt2Km…).', 'artifact, key SHA256:ulkKt2Km…', key],
    [{ kind: 'source', tag: { signed: true, signer: 'release@acme', fingerprint: key }, dependencies: 'reused' }, 'Built from source, its tag signed by release@acme (key SHA256:ulkKt2Km…); dependencies reused (the lockfile had not changed).', 'source, signed by release@acme, deps reused', key],
    [{ kind: 'source', tag: { signed: false }, dependencies: 'installed' }, 'Built from source, its tag not signed; dependencies installed.', 'source, unsigned tag', undefined],
    [{ kind: 'source', tag: { signed: false } }, 'Built from source, its tag not signed.', 'source, unsigned tag', undefined],
  ] as const)('%j', (from, sentence, short, title) => {
    expect(installedFromSentence(from)).toBe(sentence)
    expect(installedFromShort(from)).toBe(short)
    expect(installedFromKey(from)).toBe(title)
  })
  test('nothing known, nothing said', () => {
    expect([installedFromSentence(undefined), installedFromShort(undefined), installedFromKey(undefined)]).toEqual([undefined, undefined, undefined])
  })
})
