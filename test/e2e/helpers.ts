import { mkdir } from 'node:fs/promises'
import path from 'node:path'
import type { Locator, Page } from 'playwright-core'
import { screenshotDir } from '../support/browser'

// What the web UI tests share: signing in by the form, recording what the run panel showed
// over time, and screenshots of what is on screen (a phone's view, not the whole long page).

/** Opens `url` and signs in through the login form. */
export async function signIn(page: Page, url: string, password: string): Promise<void> {
  await page.goto(url)
  await page.getByLabel('Admin password').fill(password)
  await page.keyboard.press('Enter')
  await page.getByRole('navigation', { name: 'Main' }).waitFor()
}

/** A screenshot of the viewport only (test/e2e/__screenshots__/<name>.png): what a phone shows without scrolling. */
export async function screenshotView(page: Page, name: string): Promise<string> {
  await mkdir(screenshotDir, { recursive: true })
  const file = path.join(screenshotDir, `${name}.png`)
  await page.screenshot({ path: file })
  return file
}

/** A screenshot of one element, e.g. the run panel. */
export async function screenshotOf(locator: Locator, name: string): Promise<string> {
  await mkdir(screenshotDir, { recursive: true })
  const file = path.join(screenshotDir, `${name}.png`)
  await locator.screenshot({ path: file })
  return file
}

export interface PanelSample {
  runStatus: string
  title: string
  status: string
  note: string
  running: string[]
  percent: number
  tone: string
  elapsed: string
}

/**
 * Records every state the run panel goes through in sessionStorage (the page reloads itself at
 * the end, and the tab's sessionStorage survives that), so a test can check what was shown.
 */
export async function recordRunPanel(page: Page): Promise<void> {
  await page.evaluate(() => {
    const samples: unknown[] = []
    let last = ''
    const sample = () => {
      const panel = document.querySelector('[data-testid="update-run"]')
      if (!panel) return
      const bar = panel.querySelector('[role="progressbar"]')
      const s = {
        runStatus: panel.getAttribute('data-status') ?? '',
        title: panel.querySelector('#run-title')?.textContent ?? '',
        status: panel.querySelector('[data-testid="run-status"]')?.textContent ?? '',
        note: panel.querySelector('[data-testid="close-tab-note"]')?.textContent ?? '',
        running: [...panel.querySelectorAll('[data-state="running"]')].map((e) => e.getAttribute('data-step')),
        percent: Number(bar?.getAttribute('aria-valuenow')),
        tone: bar?.parentElement?.getAttribute('data-tone') ?? '',
        elapsed: panel.querySelector('[data-testid="elapsed"]')?.textContent ?? '',
      }
      const key = JSON.stringify(s)
      if (key === last) return
      last = key
      samples.push(s)
      sessionStorage.setItem('e2e.samples', JSON.stringify(samples))
    }
    sample()
    new MutationObserver(sample).observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true })
  })
}

export async function recordedRunPanel(page: Page): Promise<PanelSample[]> {
  return JSON.parse((await page.evaluate(() => sessionStorage.getItem('e2e.samples'))) ?? '[]') as PanelSample[]
}

/** The steps in the order the list shows them, with their states: ['build:done', …]. */
export async function stepStates(scope: Locator | Page): Promise<string[]> {
  return scope.locator('[data-step]').evaluateAll((els) => els.map((e) => `${e.getAttribute('data-step')}:${e.getAttribute('data-state')}`))
}

/** What a progress bar says (its percentage) and shows (how much of the track is filled, in %). */
export async function barState(scope: Locator): Promise<{ said: number; shown: number }> {
  return scope
    .locator('[role="progressbar"]')
    .first()
    .evaluate((track) => ({
      said: Number(track.getAttribute('aria-valuenow')),
      shown: Math.round(((track.firstElementChild as HTMLElement).getBoundingClientRect().width / track.clientWidth) * 100),
    }))
}
