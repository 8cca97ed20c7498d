// Which browser the end-to-end tests drive, found rather than assumed. Dependency-free so that
// .ci/run can ask before `npm ci`; pure (environment, file check and distribution come in) so the
// choice is tested table-driven for each distribution (test/ci/browser.test.ts).
import { accessSync, constants, statSync } from 'node:fs'

/** Names an executable that takes precedence over everything else. */
export const BROWSER_ENV = 'UPKEEP_TEST_BROWSER'

/** Where Debian's `chromium` package puts the browser. */
export const DEBIAN_CHROMIUM = '/usr/bin/chromium'

// Google's .deb (what GitHub's Ubuntu runners ship): wrappers on PATH, then the binary itself.
const CHROME_COMMANDS = ['google-chrome', 'google-chrome-stable']
const CHROME_BINARY = '/opt/google/chrome/chrome'
const SYSTEM_PATH = ['/usr/local/bin', '/usr/bin', '/bin']

/**
 * The browser for the end-to-end tests, in this order: `$UPKEEP_TEST_BROWSER`, Debian's Chromium
 * (on Debian only), Google Chrome, then (on Debian only) Debian's Chromium installed with apt.
 * Ubuntu's `chromium`/`chromium-browser` are stubs that launch a snap, which a headless test
 * cannot drive: they are never picked, and nothing is installed there.
 *
 * @param {{ env: Record<string, string | undefined>, exists: (file: string) => boolean, distro: 'debian' | 'ubuntu' | 'unknown' }} facts
 * @returns {import('./browser.d.mts').BrowserChoice}
 */
export function findBrowser({ env, exists, distro }) {
  const explicit = env[BROWSER_ENV]
  if (explicit) {
    if (exists(explicit)) return { path: explicit, source: `$${BROWSER_ENV}` }
    return { error: `${BROWSER_ENV}=${explicit} is not an executable file`, hint: `point ${BROWSER_ENV} at a Chromium or Google Chrome executable, or unset it` }
  }
  if (distro === 'debian' && exists(DEBIAN_CHROMIUM)) return { path: DEBIAN_CHROMIUM, source: "Debian's Chromium" }
  for (const command of CHROME_COMMANDS) {
    for (const dir of searchPath(env.PATH)) {
      const file = `${dir}/${command}`
      if (exists(file)) return { path: file, source: 'Google Chrome' }
    }
  }
  if (exists(CHROME_BINARY)) return { path: CHROME_BINARY, source: 'Google Chrome' }
  if (distro === 'debian') return { install: ['chromium'], path: DEBIAN_CHROMIUM, source: "Debian's Chromium (to be installed with apt)" }
  const why = distro === 'ubuntu' ? "Ubuntu's chromium package is a stub for a snap, which the tests cannot drive" : 'this is neither Debian nor Ubuntu'
  return {
    error: `no browser for the end-to-end tests (${why})`,
    hint: `install Google Chrome (google-chrome-stable), or set ${BROWSER_ENV} to a Chromium or Chrome executable`,
  }
}

/** PATH's directories, then the system's (sudo may have reset PATH), each once. */
function searchPath(pathVar) {
  return [...new Set([...(pathVar ?? '').split(':').filter((d) => d.startsWith('/')), ...SYSTEM_PATH])]
}

/** A regular file this process may execute (a dangling symlink or a directory is no browser). */
export function isExecutable(file) {
  try {
    accessSync(file, constants.X_OK)
    return statSync(file).isFile()
  } catch {
    return false
  }
}
