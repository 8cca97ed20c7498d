// Types of browser.mjs for the TypeScript that imports it (test/support/browser.ts, test/ci/).

export type Distro = 'debian' | 'ubuntu' | 'unknown'

export type BrowserChoice =
  /** An executable that is there now. */
  | { path: string; source: string; install?: undefined; error?: undefined }
  /** Nothing there yet: install these packages with apt, then `path` is the browser. */
  | { install: string[]; path: string; source: string; error?: undefined }
  /** Nothing usable, and nothing to install: fail with this. */
  | { error: string; hint: string; path?: undefined; install?: undefined; source?: undefined }

export const BROWSER_ENV: 'UPKEEP_TEST_BROWSER'
export const DEBIAN_CHROMIUM: '/usr/bin/chromium'

export function findBrowser(facts: { env: Record<string, string | undefined>; exists: (file: string) => boolean; distro: Distro }): BrowserChoice

/** A regular file this process may execute (following symlinks). */
export function isExecutable(file: string): boolean
