import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import path from 'node:path'
import { chromium, type Browser, type Page } from 'playwright-core'
import { repoRoot } from './paths'

export const CHROMIUM = '/usr/bin/chromium'
const INSTALL = 'apt-get update && apt-get install -y chromium'

/**
 * Debian's Chromium, installed with apt when missing. Fails loudly, naming the command,
 * when it cannot be installed: browser tests never skip.
 */
export function ensureChromium(): string {
  if (existsSync(CHROMIUM)) return CHROMIUM
  if (process.getuid?.() !== 0) throw new Error(`Chromium is missing at ${CHROMIUM}; install it as root: ${INSTALL}`)
  try {
    execFileSync('sh', ['-c', `DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium || (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium)`], {
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 15 * 60_000,
    })
  } catch (err) {
    const e = err as { stderr?: Buffer }
    throw new Error(`installing Chromium failed; run as root: ${INSTALL}\n${e.stderr?.toString().slice(-2000) ?? ''}`)
  }
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium still missing after apt-get; run as root: ${INSTALL}`)
  return CHROMIUM
}

/** Headless Chromium with the flags this machine needs (no sandbox as root, no background network). */
export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: ensureChromium(),
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
