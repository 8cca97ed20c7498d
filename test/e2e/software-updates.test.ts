import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { Browser, BrowserContext, Page, Route } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { launchBrowser, screenshot } from '../support/browser'
import { recordedRunPanel, recordRunPanel, screenshotView } from './helpers'
import { git } from '../support/git-fixtures'
import { startGitHubStub, type GitHubStub } from '../support/github-stub'
import { githubRelease } from '../support/msw'
import { createUpkeepOrigin, installUpkeep, type UpkeepInstall } from '../support/upkeep-app'

// The web UI in Debian's Chromium against a real Upkeep server in process mode: real git tags of
// Upkeep itself to update to, the real updater, and GitHub replaced by a local HTTP server that
// answers like GitHub. Screenshots of each state land in test/e2e/__screenshots__/.

const REPO = 'acme/upkeep'
const PASSWORD = 'e2e-admin-password'
const HOSTILE_NOTES = [
  '## What changed',
  '- **Faster** updates, see [the docs](https://example.com/docs)',
  '',
  '### Details',
  '',
  'Smaller things.',
  '',
  '<script>window.__pwned = "script"</script>',
  '',
  '<img src="x" onerror="window.__pwned = \'img\'">',
  '',
  '[click me](javascript:window.__pwned=%22link%22)',
  '',
  '<a href="javascript:window.__pwned=1">raw link</a>',
].join('\n')

function release(tag: string, body: string, publishedAt: string) {
  return githubRelease(tag, { repo: REPO, body, name: `Upkeep ${tag.slice(1)}`, publishedAt })
}

describe('Settings → Software Updates in Chromium', () => {
  let work: string
  let github: GitHubStub
  let app: UpkeepInstall
  let browser: Browser
  let context: BrowserContext
  let page: Page
  const dialogs: string[] = []
  const consoleErrors: string[] = []

  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'upkeep-e2e-ui-'))
    github = await startGitHubStub()
    github.setReleases(REPO, [release('v1.1.0', HOSTILE_NOTES, '2026-11-20T09:30:00Z')])
    const origin = await createUpkeepOrigin(work, [
      { tag: 'v1.0.0', behaviour: 'good' },
      { tag: 'v1.1.0', behaviour: 'good' },
      { tag: 'v1.2.0', behaviour: 'crash-at-start' },
    ])
    app = await installUpkeep(origin, 'v1.0.0', {
      GITHUB_API_URL: github.url,
      UPDATE_REPO: REPO,
      UPKEEP_ADMIN_PASSWORD: PASSWORD,
      UPKEEP_HEALTH_TIMEOUT: '20',
    })
    browser = await launchBrowser()
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } })
    page = await context.newPage()
    // No script of a release body may ever run: a dialog or a global it sets fails the test.
    page.on('dialog', (d) => {
      dialogs.push(d.message())
      void d.dismiss()
    })
    // CSP violations and script errors show up here; expected network failures (the server
    // restarting, a wrong password's 401) are not errors of the page.
    page.on('console', (m) => {
      if (m.type() === 'error' && !/Failed to load resource|net::ERR_|EventSource/.test(m.text())) consoleErrors.push(m.text())
    })
    page.on('pageerror', (err) => consoleErrors.push(String(err)))
  }, 300_000)

  afterAll(async () => {
    if (process.env.E2E_DEBUG) {
      const { readFile, readdir } = await import('node:fs/promises')
      console.log('SERVER LOG\n' + (await app.serverLog()).slice(-6000))
      console.log('DATA', await readdir(app.dataDir, { recursive: true }))
      console.log('UPDATER LOG\n' + (await readFile(path.join(app.dataDir, 'logs/updater.log'), 'utf8').catch(String)).slice(-6000))
      console.log('STATUS\n' + (await readFile(path.join(app.dataDir, 'update-status.jsonl'), 'utf8').catch(String)).slice(-3000))
    }
    await browser?.close()
    await app?.stop()
    await github?.close()
    await rm(work, { recursive: true, force: true })
  })

  test('log in with the keyboard', async () => {
    await page.goto(app.url + '/settings/updates')
    await page.getByLabel('Admin password').waitFor()
    await screenshot(page, '01-login')
    // The field has focus on load; typing and Enter sign in.
    await page.keyboard.type('wrong password')
    await page.keyboard.press('Enter')
    await expect.poll(() => page.getByRole('alert').textContent()).toContain('Wrong password')
    await page.getByLabel('Admin password').fill(PASSWORD)
    await page.keyboard.press('Enter')
    await page.getByRole('heading', { name: 'Software Updates' }).waitFor()
    expect(await page.getByTestId('current-version').textContent()).toBe('1.0.0')
  })

  test('the login help shows the command as code, not with backticks', async () => {
    const context2 = await browser.newContext({ viewport: { width: 375, height: 812 } })
    const fresh = await context2.newPage()
    await fresh.goto(app.url + '/')
    const help = fresh.locator('#login-help')
    await help.waitFor()
    expect(await help.textContent()).not.toContain('`')
    expect(await help.locator('code').textContent()).toBe('upkeep set-password')
    await screenshotView(fresh, '01b-mobile-login')
    await context2.close()
  })

  test('the banner announces 1.1.0 on every page', async () => {
    const banner = page.getByTestId('update-banner')
    await banner.waitFor()
    expect(await banner.textContent()).toContain('Upkeep 1.1.0 is available')
    await page.getByRole('link', { name: 'Overview' }).click()
    await page.getByRole('heading', { name: 'Overview' }).waitFor()
    expect(await banner.isVisible()).toBe(true)
    await screenshot(page, '02-banner-overview')
    await banner.getByRole('button', { name: "See what's new" }).click()
    await page.getByRole('heading', { name: 'Version 1.1.0 is available' }).waitFor()
    await screenshot(page, '03-update-available')
  })

  test('release notes with <script>, onerror and javascript: links render inert; their headings sit below the card title', async () => {
    const notes = page.getByTestId('release-notes')
    expect(await notes.getByRole('heading', { name: 'What changed' }).count()).toBe(1)
    // `##` is bigger than `###`, and both are smaller than the card's own title.
    const size = (name: string) => notes.getByRole('heading', { name }).evaluate((el) => parseFloat(getComputedStyle(el).fontSize))
    const title = await page.locator('#available-title').evaluate((el) => parseFloat(getComputedStyle(el).fontSize))
    expect(await size('What changed')).toBeGreaterThan(await size('Details'))
    expect(title).toBeGreaterThanOrEqual(await size('What changed'))
    expect(await notes.getByRole('heading', { name: 'What changed' }).evaluate((el) => el.tagName)).toBe('H4')
    expect(await notes.getByRole('link', { name: 'the docs' }).getAttribute('href')).toBe('https://example.com/docs')
    const inside = await notes.evaluate((el) => ({
      scripts: el.querySelectorAll('script, img, iframe, object, embed').length,
      handlers: [...el.querySelectorAll('*')].flatMap((n) => n.getAttributeNames().filter((a) => a.startsWith('on'))),
      hrefs: [...el.querySelectorAll('a')].map((a) => a.getAttribute('href')),
      text: el.textContent ?? '',
    }))
    expect(inside.scripts).toBe(0)
    expect(inside.handlers).toEqual([])
    for (const href of inside.hrefs) expect(href).toMatch(/^https?:/)
    // Raw HTML shows as text; the javascript: link keeps its words but is no link.
    expect(inside.text).toContain('<script>window.__pwned = "script"</script>')
    expect(inside.text).toContain('click me')
    expect(await page.evaluate(() => (window as unknown as { __pwned?: unknown }).__pwned)).toBeUndefined()
    expect(dialogs).toEqual([])
  })

  test('Update now: steps advance, the page survives the restart and lands on 1.1.0 by itself', async () => {
    // From the banner: it opens Software Updates with the confirmation.
    await page.getByRole('link', { name: 'Overview' }).click()
    await page.getByTestId('update-banner').getByRole('button', { name: 'Update now' }).click()
    const dialog = page.getByRole('dialog', { name: 'Update to 1.1.0?' })
    await dialog.waitFor()
    expect(await dialog.textContent()).toContain('back up')
    await screenshot(page, '04-confirm')
    await dialog.getByRole('button', { name: 'Update to 1.1.0' }).click()

    const run = page.getByTestId('update-run')
    await run.waitFor()
    await recordRunPanel(page)
    // While it runs, the banner shows the run, not an offer to start another one.
    const banner = page.getByTestId('update-banner')
    await expect.poll(() => banner.getAttribute('data-mode')).toBe('running')
    expect(await banner.getByRole('button', { name: 'Update now' }).count()).toBe(0)
    expect(await banner.getByRole('progressbar').getAttribute('aria-valuenow')).toMatch(/^\d+$/)
    // Steps advance: while the build runs, backup and fetch are done, later steps wait.
    await page.locator('[data-step="build"][data-state="running"]').waitFor({ timeout: 60_000 })
    const states = await page.locator('[data-step]').evaluateAll((els) => Object.fromEntries(els.map((e) => [e.getAttribute('data-step'), e.getAttribute('data-state')])))
    expect(states).toMatchObject({ preflight: 'done', backup: 'done', fetch: 'done', build: 'running', switch: 'pending', restart: 'pending', health: 'pending' })
    expect(Number(await run.getByRole('progressbar', { name: 'Update progress' }).getAttribute('aria-valuenow'))).toBeGreaterThan(10)
    expect(await run.getByTestId('close-tab-note').textContent()).toContain('You can close this tab')
    expect(await run.getByTestId('elapsed').textContent()).toMatch(/^Elapsed \d+:\d\d$/)
    await screenshot(page, '05-building')

    // Keep the page from reconnecting once the server restarts, so the restart stays on screen to be looked at.
    const refuse = (route: Route) => route.abort()
    await page.route('**/api/updates/events**', refuse)
    await page.route('**/api/health', refuse)
    await expect.poll(() => run.getByTestId('run-status').textContent(), { timeout: 120_000 }).toMatch(/^The server is restarting; reconnecting/)
    await screenshot(page, '05b-restarting')
    await page.unroute('**/api/updates/events**', refuse)
    await page.unroute('**/api/health', refuse)

    // The server restarts: the page says so and reconnects, then reloads onto the new version by itself.
    const notice = page.getByTestId('updated-notice')
    await notice.waitFor({ timeout: 120_000 })
    const samples = await recordedRunPanel(page)
    if (process.env.E2E_DEBUG) console.log(samples.map((x) => JSON.stringify(x)).join('\n'))
    // During the restart the page said so, told that the tab may be closed, and listed the restart as the running step.
    const restarting = samples.filter((s) => s.status.startsWith('The server is restarting'))
    expect(restarting.length).toBeGreaterThan(0)
    for (const s of restarting) {
      expect(s.running).toEqual(['restart'])
      expect(s.note).toContain('You can close this tab: the update continues on the server')
    }
    // The bar never went back, kept moving (a new value at every step at least) and ended green at 100 %.
    const percents = samples.map((s) => s.percent)
    for (let i = 1; i < percents.length; i++) expect(percents[i]).toBeGreaterThanOrEqual(percents[i - 1]!)
    expect(new Set(percents).size).toBeGreaterThanOrEqual(6)
    expect(samples.at(-1)).toMatchObject({ runStatus: 'complete', percent: 100, tone: 'complete' })
    // Elapsed time was shown and counted up.
    const elapsed = samples.map((s) => s.elapsed).filter(Boolean)
    expect(elapsed[0]).toMatch(/^Elapsed 0:\d\d$/)
    expect(new Set(elapsed).size).toBeGreaterThan(1)
    // One wording: "Updated to 1.1.0" before the reload and after it.
    expect(samples.at(-1)!.title).toBe('Updated to 1.1.0')
    expect(await notice.textContent()).toContain('Updated to 1.1.0')
    expect(await page.getByTestId('current-version').textContent()).toBe('1.1.0')
    expect((await app.health())?.version).toBe('1.1.0')
    await screenshot(page, '06-updated')

    const row = page.getByTestId('history').locator('tbody tr').first()
    await row.waitFor()
    expect(await row.textContent()).toMatch(/1\.0\.0.*1\.1\.0.*Complete/)
    expect(await row.locator('td').last().textContent()).toMatch(/^upkeep-1\.0\.0-.*\.tar\.gz$/)
    // How 1.1.0 was installed: its tag's source (this release's upkeep.json build), unsigned.
    expect(await row.getByTestId('history-installed-from').textContent()).toBe('source, unsigned tag')
    expect(await page.getByTestId('installed-from').textContent()).toBe('Built from source, its tag not signed.')
    expect(await page.getByTestId('update-banner').count()).toBe(0)
  }, 300_000)

  test('a dismissed banner stays hidden across reloads until a newer version is published', async () => {
    github.setReleases(REPO, [release('v1.2.0', 'Broken on purpose.', '2026-11-21T09:30:00Z'), release('v1.1.0', HOSTILE_NOTES, '2026-11-20T09:30:00Z')])
    await page.getByRole('button', { name: 'Check for updates' }).click()
    const banner = page.getByTestId('update-banner')
    await banner.waitFor()
    expect(await banner.textContent()).toContain('1.2.0 is available')
    await banner.getByRole('button', { name: 'Dismiss the notice about version 1.2.0' }).click()
    expect(await banner.count()).toBe(0)
    await page.reload()
    await page.getByRole('heading', { name: 'Version 1.2.0 is available' }).waitFor()
    expect(await page.getByTestId('update-banner').count()).toBe(0)
    await screenshot(page, '07-banner-dismissed')

    github.setReleases(REPO, [
      release('v1.3.0', 'The next one.', '2026-11-22T09:30:00Z'),
      release('v1.2.0', 'Broken on purpose.', '2026-11-21T09:30:00Z'),
      release('v1.1.0', HOSTILE_NOTES, '2026-11-20T09:30:00Z'),
    ])
    await page.getByRole('button', { name: 'Check for updates' }).click()
    await banner.waitFor()
    expect(await banner.textContent()).toContain('1.3.0 is available')
    await page.reload()
    await banner.waitFor()
  })

  test('a release that fails its health check: failed step, rollback notice, no Retry as the main action; the old version still runs', async () => {
    // v1.3.0 is only announced; pick the (broken) v1.2.0 from the list.
    await page.getByLabel('Version to install').selectOption('1.2.0')
    await page.locator('#whats-new').getByRole('button', { name: 'Update now' }).click()
    await page.getByRole('dialog', { name: 'Update to 1.2.0?' }).getByRole('button', { name: 'Update to 1.2.0' }).click()
    const failure = page.getByTestId('run-failure')
    await failure.waitFor({ timeout: 180_000 })
    const text = await failure.textContent()
    expect(text).toContain('Health check failed')
    expect(await page.getByTestId('rollback-notice').textContent()).toContain('1.1.0 was restored and runs again')
    expect(await page.locator('[data-step="health"]').getAttribute('data-state')).toBe('failed')
    expect(await page.getByRole('button', { name: 'Retry' }).count()).toBe(0)
    // Installing it again is there, but not as the main action.
    const again = failure.getByRole('button', { name: 'Try 1.2.0 again' })
    expect(await again.isVisible()).toBe(true)
    expect((await again.getAttribute('class')) ?? '').not.toContain('primary')
    expect((await app.health())?.version).toBe('1.1.0')
    expect(git(app.appDir, ['describe', '--tags'])).toBe('v1.1.0')
    await screenshot(page, '08-rolled-back')
    const row = page.getByTestId('history').locator('tbody tr').first()
    await expect.poll(() => row.textContent(), { timeout: 10_000 }).toMatch(/1\.1\.0.*1\.2\.0.*Rolled back/)
  }, 300_000)

  test('keyboard only: Tab reaches Update now, Enter opens the confirmation, Escape closes it', async () => {
    await page.reload()
    await page.getByRole('heading', { name: 'Software Updates' }).waitFor()
    let reached = false
    for (let i = 0; i < 40 && !reached; i++) {
      await page.keyboard.press('Tab')
      reached = await page.evaluate(() => document.activeElement?.textContent?.trim() === 'Update now' && document.activeElement.closest('#whats-new') !== null)
    }
    expect(reached).toBe(true)
    await page.keyboard.press('Enter')
    const dialog = page.getByRole('dialog', { name: /Update to 1\.3\.0\?/ })
    await dialog.waitFor()
    await page.keyboard.press('Escape')
    await dialog.waitFor({ state: 'hidden' })
  })

  test('every button has an accessible name, and the page works at 375 px', async () => {
    const unnamed = await page.locator('button, a, input, select').evaluateAll((els) =>
      els
        .filter((el) => (el as HTMLElement).offsetParent !== null)
        .filter((el) => {
          const label = el.getAttribute('aria-label') || el.textContent?.trim() || (el.id && document.querySelector(`label[for="${el.id}"]`)?.textContent?.trim()) || el.closest('label')?.textContent?.trim()
          return !label
        })
        .map((el) => el.outerHTML.slice(0, 80)),
    )
    expect(unnamed).toEqual([])

    await page.setViewportSize({ width: 375, height: 812 })
    await page.reload()
    await page.locator('#whats-new').getByRole('button', { name: 'Update now' }).waitFor()
    await page.getByTestId('history').waitFor()
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)
    expect(overflow).toBeLessThanOrEqual(0)
    // Every cell of the history is inside the screen (a row is a small card on a phone).
    const clipped = await page.getByTestId('history').locator('td').evaluateAll((tds) => tds.filter((td) => td.getBoundingClientRect().right > window.innerWidth).length)
    expect(clipped).toBe(0)
    // The bar above the content is compact: the page's heading starts within the first 260 px.
    const headingTop = await page.getByRole('heading', { name: 'Software Updates', level: 1 }).evaluate((el) => el.getBoundingClientRect().top + window.scrollY)
    expect(headingTop).toBeLessThan(260)
    await screenshot(page, '09-mobile-375')
    expect(consoleErrors).toEqual([])
  })
})
