import { describe, expect, test } from 'vitest'
import { compareVersions, isNewer, isReleaseTag, tagForVersion, versionFromDescribe } from '../../../updater/shared/version'

describe('versions', () => {
  test.each([
    ['v1.4.0', '1.4.0'],
    ['v1.4.0-3-gabc1234', '1.4.0-3-gabc1234'],
    ['v2.0.0-rc.1\n', '2.0.0-rc.1'],
    ['1.0.0', '1.0.0'],
  ])('versionFromDescribe(%j) = %s', (d, v) => expect(versionFromDescribe(d)).toBe(v))

  test.each([
    ['v1.2.3', true],
    ['v1.2.3-rc.1', true],
    ['v0.0.1', true],
    ['1.2.3', false],
    ['v1.2', false],
    ['v01.2.3', false],
    ['v1.2.3;rm -rf /', false],
    ['--upload-pack=x', false],
    ['latest', false],
  ])('isReleaseTag(%j) = %s', (tag, ok) => expect(isReleaseTag(tag)).toBe(ok))

  test('tagForVersion', () => {
    expect(tagForVersion('1.2.3')).toBe('v1.2.3')
    expect(tagForVersion('v1.2.3')).toBe('v1.2.3')
    expect(() => tagForVersion('1.2')).toThrow(/not a release tag/)
  })

  test.each([
    ['1.10.0', '1.9.9', 1],
    ['1.0.0', '1.0.0', 0],
    ['1.0.0-rc.1', '1.0.0', -1],
    ['1.4.0-3-gabc1234', '1.4.0', 1],
    ['1.4.0-3-gabc1234', '1.4.1', -1],
    ['1.4.0-3-gabc1234', '1.4.0-10-gdef5678', -1],
    ['v1.2.0', '1.1.0', 1],
    ['0.0.0-dev', '0.0.1', -1],
    ['garbage', '0.0.1', -1],
  ])('compareVersions(%s, %s) = %d', (a, b, r) => {
    expect(compareVersions(a, b)).toBe(r)
    expect(compareVersions(b, a)).toBe(-r || 0)
  })

  test('isNewer', () => {
    expect(isNewer('1.1.0', '1.0.0')).toBe(true)
    expect(isNewer('1.0.0', '1.0.0')).toBe(false)
    expect(isNewer('1.0.0', '1.0.0-2-gabcdef0')).toBe(false)
  })
})
