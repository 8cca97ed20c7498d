import { readFileSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import path from 'node:path'
import { chromium, type Browser, type Page } from 'playwright-core'
import { findBrowser, isExecutable, type Distro } from '../../.ci/browser.mjs'
import { distroOf, parseOsRelease } from '../../.ci/packages.mjs'
import { ensureCommand } from './apt'
import { repoRoot } from './paths'


/** This machine's distribution, from os-release(5). */
export function thisDistro(): Distro {
  for (const file of ['/etc/os-release', '/usr/lib/os-release']) {
    try {
      return distroOf(parseOsRelease(readFileSync(file, 'utf8')))
    } catch {
      // try the next one
    }
  }
  return 'unknown'
}

/**
 * The browser the end-to-end tests drive (see .ci/browser.mjs for the order): found on this
 * machine, or Debian's Chromium installed with apt. Fails loudly, saying what to do, when there
 * is none: browser tests never skip.
 */
export function ensureBrowser(env: Record<string, string | undefined> = process.env): string {
  const choice = findBrowser({ env, exists: isExecutable, distro: thisDistro() })
  if (choice.error !== undefined) throw new Error(`${choice.error}: ${choice.hint}`)
  if (choice.install) {
    ensureCommand(path.basename(choice.path), choice.install, { purpose: 'the browser tests', manual: `apt-get update && apt-get install -y ${choice.install.join(' ')}` })
    if (!isExecutable(choice.path)) throw new Error(`${choice.path} is still missing after installing ${choice.install.join(' ')}; install it as root: apt-get install -y ${choice.install.join(' ')}`)
  }
  return choice.path
}

/** Headless Chromium (or Chrome) with the flags this machine needs (no sandbox as root, no background network). */
export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: ensureBrowser(),
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
  })
}

export const screenshotDir = path.join(repoRoot, 'test/e2e/__screenshots__')

/** Saves a full-page screenshot under test/e2e/__screenshots__/<name>.png (gitignored) for a person to look at. */
export async function screenshot(page: Page, name: string): Promise<string> {
  await mkdir(screenshotDir, { recursive: true })
  const file = path.join(screenshotDir, `${name}.png`)
  await page.screenshot({ path: file, fullPage: true })
  return file
}
