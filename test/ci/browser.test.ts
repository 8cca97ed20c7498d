import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { describe, expect, test } from 'vitest'
import { BROWSER_ENV, findBrowser, isExecutable, type Distro } from '../../.ci/browser.mjs'
import { ensureBrowser, launchBrowser } from '../support/browser'
import { DEBIAN_WITH_CHROMIUM, UBUNTU_RUNNER, UBUNTU_SNAP_ONLY } from './os-release-fixtures'

const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
const on = (files: string[]) => (f: string) => files.includes(f)

describe('findBrowser', () => {
  test.each<{ name: string; distro: Distro; files: string[]; env?: Record<string, string>; want: ReturnType<typeof findBrowser> }>([
    { name: "Debian 12: Debian's Chromium", distro: 'debian', files: DEBIAN_WITH_CHROMIUM, want: { path: '/usr/bin/chromium', source: "Debian's Chromium" } },
    { name: 'Debian 12, nothing there: install chromium with apt', distro: 'debian', files: [], want: { install: ['chromium'], path: '/usr/bin/chromium', source: "Debian's Chromium (to be installed with apt)" } },
    { name: 'Debian 12 with only Google Chrome: Chrome, nothing installed', distro: 'debian', files: ['/usr/bin/google-chrome-stable', '/opt/google/chrome/chrome'], want: { path: '/usr/bin/google-chrome-stable', source: 'Google Chrome' } },
    { name: 'Debian 12 with both: Chromium first', distro: 'debian', files: [...DEBIAN_WITH_CHROMIUM, '/usr/bin/google-chrome'], want: { path: '/usr/bin/chromium', source: "Debian's Chromium" } },
    { name: 'Debian 12, the variable wins', distro: 'debian', files: [...DEBIAN_WITH_CHROMIUM, '/opt/chrome-for-testing/chrome'], env: { [BROWSER_ENV]: '/opt/chrome-for-testing/chrome' }, want: { path: '/opt/chrome-for-testing/chrome', source: '$UPKEEP_TEST_BROWSER' } },
    { name: 'Ubuntu 24.04 runner: google-chrome, never the chromium stub', distro: 'ubuntu', files: UBUNTU_RUNNER, want: { path: '/usr/bin/google-chrome', source: 'Google Chrome' } },
    { name: 'Ubuntu 24.04, Chrome only under /opt', distro: 'ubuntu', files: ['/opt/google/chrome/chrome', ...UBUNTU_SNAP_ONLY], want: { path: '/opt/google/chrome/chrome', source: 'Google Chrome' } },
    { name: 'Ubuntu 24.04, google-chrome-stable in /usr/local/bin', distro: 'ubuntu', files: ['/usr/local/bin/google-chrome-stable'], want: { path: '/usr/local/bin/google-chrome-stable', source: 'Google Chrome' } },
    { name: 'Ubuntu 24.04, the variable may name the stub on purpose', distro: 'ubuntu', files: UBUNTU_RUNNER, env: { [BROWSER_ENV]: '/usr/bin/chromium' }, want: { path: '/usr/bin/chromium', source: '$UPKEEP_TEST_BROWSER' } },
  ])('$name', ({ distro, files, env, want }) => {
    expect(findBrowser({ env: { PATH, ...env }, exists: on(files), distro })).toEqual(want)
  })

  test('Ubuntu 24.04 with only the snap stubs: no browser, nothing to install, and says what to do', () => {
    const choice = findBrowser({ env: { PATH }, exists: on(UBUNTU_SNAP_ONLY), distro: 'ubuntu' })
    expect(choice).toEqual({
      error: "no browser for the end-to-end tests (Ubuntu's chromium package is a stub for a snap, which the tests cannot drive)",
      hint: 'install Google Chrome (google-chrome-stable), or set UPKEEP_TEST_BROWSER to a Chromium or Chrome executable',
    })
  })

  test('neither Debian nor Ubuntu: nothing to install', () => {
    expect(findBrowser({ env: { PATH }, exists: on(['/usr/bin/chromium']), distro: 'unknown' })).toMatchObject({ error: 'no browser for the end-to-end tests (this is neither Debian nor Ubuntu)' })
  })

  test('a variable naming nothing fails instead of falling back', () => {
    const choice = findBrowser({ env: { PATH, [BROWSER_ENV]: '/nowhere/chrome' }, exists: on(DEBIAN_WITH_CHROMIUM), distro: 'debian' })
    expect(choice).toEqual({ error: 'UPKEEP_TEST_BROWSER=/nowhere/chrome is not an executable file', hint: 'point UPKEEP_TEST_BROWSER at a Chromium or Google Chrome executable, or unset it' })
  })

  test('a PATH without the system directories still finds /usr/bin (sudo may reset PATH)', () => {
    expect(findBrowser({ env: { PATH: '/home/runner/bin' }, exists: on(['/usr/bin/google-chrome']), distro: 'ubuntu' })).toEqual({ path: '/usr/bin/google-chrome', source: 'Google Chrome' })
  })

  test('isExecutable: an executable file yes; a directory, a plain file or nothing no', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'upkeep-browser-'))
    try {
      await writeFile(path.join(dir, 'plain'), 'not a program\n', { mode: 0o644 })
      await symlink(path.join(dir, 'gone'), path.join(dir, 'dangling'))
      expect(isExecutable(process.execPath)).toBe(true)
      expect(isExecutable(dir)).toBe(false)
      expect(isExecutable(path.join(dir, 'plain'))).toBe(false) // not even for root
      expect(isExecutable(path.join(dir, 'dangling'))).toBe(false)
      expect(isExecutable('/nowhere/chrome')).toBe(false)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})

describe('the browser on this machine', () => {
  test('ensureBrowser fails loudly, naming the variable, when it names nothing', () => {
    expect(() => ensureBrowser({ ...process.env, [BROWSER_ENV]: '/nowhere/chrome' })).toThrow('UPKEEP_TEST_BROWSER=/nowhere/chrome is not an executable file: point UPKEEP_TEST_BROWSER at')
  })

  test('the browser found here starts headless and renders a page', async () => {
    const browser = await launchBrowser()
    try {
      const page = await browser.newPage()
      await page.setContent('<title>ok</title><p id="p">rendered</p>')
      expect(await page.textContent('#p')).toBe('rendered')
      expect(await page.evaluate(() => navigator.userAgent)).toMatch(/Chrome\/\d+/)
    } finally {
      await browser.close()
    }
  })
})
