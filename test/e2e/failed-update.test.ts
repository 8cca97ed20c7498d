import { chown, rm, writeFile, mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { Browser, BrowserContext, Page, Route } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { launchBrowser, screenshot } from '../support/browser'
import { OWNER } from '../support/fixture-app'
import { startGitHubStub, type GitHubStub } from '../support/github-stub'
import { githubRelease } from '../support/msw'
import { createUpkeepOrigin, installUpkeep, type UpkeepInstall } from '../support/upkeep-app'
import { barState, screenshotOf, screenshotView, signIn, stepStates } from './helpers'

// The web UI when the newest release is broken: a real Upkeep 1.0.0 in process mode updates to
// a 1.1.0 that crashes at start, and rolls back. Two browsers watch it: a desktop one whose
// page was loaded before the update began (it still offers "Update now"), and a phone that
// starts the update from the banner. Then: a reload, a dismissal, a newer release, and a
// preflight failure whose hint is a command.

const REPO = 'acme/upkeep'
const PASSWORD = 'e2e-admin-password'
const DANGER = 'rgb(198, 40, 40)'

function release(tag: string, body: string, publishedAt: string) {
  return githubRelease(tag, { repo: REPO, body, name: `Upkeep ${tag.slice(1)}`, publishedAt })
}

describe('a failed update in Chromium (desktop and phone)', () => {
  let work: string
  let github: GitHubStub
  let app: UpkeepInstall
  let browser: Browser
  let wide: BrowserContext
  let narrow: BrowserContext
  let desk: Page
  let phone: Page
  const pageErrors: string[] = []

  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'upkeep-e2e-failed-'))
    github = await startGitHubStub()
    github.setReleases(REPO, [release('v1.1.0', '## Broken\n\nThis one crashes at start.', '2026-11-20T09:30:00Z')])
    const origin = await createUpkeepOrigin(work, [
      { tag: 'v1.0.0', behaviour: 'good' },
      { tag: 'v1.1.0', behaviour: 'crash-at-start' },
      { tag: 'v1.2.0', behaviour: 'good' },
    ])
    app = await installUpkeep(origin, 'v1.0.0', { GITHUB_API_URL: github.url, UPDATE_REPO: REPO, UPKEEP_ADMIN_PASSWORD: PASSWORD, UPKEEP_HEALTH_TIMEOUT: '20' })
    browser = await launchBrowser()
    wide = await browser.newContext({ viewport: { width: 1280, height: 900 } })
    await wide.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: app.url })
    narrow = await browser.newContext({ viewport: { width: 375, height: 812 }, isMobile: true, hasTouch: true })
    desk = await wide.newPage()
    phone = await narrow.newPage()
    for (const p of [desk, phone]) {
      p.on('pageerror', (err) => pageErrors.push(String(err)))
      p.on('console', (m) => {
        if (m.type() === 'error' && !/Failed to load resource|net::ERR_|EventSource/.test(m.text())) pageErrors.push(m.text())
      })
    }
  }, 300_000)

  afterAll(async () => {
    await browser?.close()
    await app?.stop()
    await github?.close()
    await rm(work, { recursive: true, force: true })
  })

  test('while an update runs, every page shows it with its progress and offers no second one; a stale page joins it', async () => {
    await signIn(desk, app.url + '/settings/updates', PASSWORD)
    await desk.getByRole('heading', { name: 'Version 1.1.0 is available' }).waitFor()
    await signIn(phone, app.url + '/', PASSWORD)
    const phoneBanner = phone.getByTestId('update-banner')
    await expect.poll(() => phoneBanner.getAttribute('data-mode')).toBe('available')
    await screenshotView(phone, '20-mobile-overview-available')

    // The phone starts the update from its banner.
    await phoneBanner.getByRole('button', { name: 'Update now' }).click()
    await phone.getByRole('dialog', { name: 'Update to 1.1.0?' }).getByRole('button', { name: 'Update to 1.1.0' }).click()
    await phone.getByTestId('update-run').waitFor()

    // The desktop page was loaded before: it still offers "Update now". Clicking it joins the running update.
    await desk.locator('#whats-new').getByRole('button', { name: 'Update now' }).click()
    await desk.getByRole('dialog', { name: 'Update to 1.1.0?' }).getByRole('button', { name: 'Update to 1.1.0' }).click()
    await desk.getByTestId('joined-run').waitFor()
    expect(await desk.getByTestId('action-error').count()).toBe(0)
    await expect.poll(() => desk.getByTestId('update-run').getAttribute('data-status')).toBe('running')

    // Banner: the run with its percentage, the note that the tab may be closed, no "Update now".
    const deskBanner = desk.getByTestId('update-banner')
    await expect.poll(() => deskBanner.getAttribute('data-mode')).toBe('running')
    expect(await deskBanner.getByRole('button', { name: 'Update now' }).count()).toBe(0)
    expect(await deskBanner.textContent()).toContain('You can close this tab; the update continues on the server.')
    expect(await deskBanner.getByRole('progressbar', { name: 'Update progress' }).getAttribute('aria-valuenow')).toMatch(/^\d+$/)
    expect(await deskBanner.locator('.progress-percent').textContent()).toMatch(/^\d+ %$/)
    // The card cannot start a second update either.
    expect(await desk.locator('#whats-new').getByRole('button', { name: 'Update now' }).isDisabled()).toBe(true)

    // On the phone's Overview: the banner shows the run too, and the page says an update is running.
    await phone.getByRole('link', { name: 'Overview' }).click()
    await expect.poll(() => phoneBanner.getAttribute('data-mode')).toBe('running')
    expect(await phone.getByTestId('overview-updates').textContent()).toContain('An update to 1.1.0 is running')
    expect(await phoneBanner.getByRole('button', { name: 'Update now' }).count()).toBe(0)
    await screenshotView(phone, '21-mobile-overview-running')
    await screenshot(desk, '22-running-joined')

    // Keep the phone from reconnecting once the server restarts, so the restart stays on its screen to be looked at.
    const refuse = (route: Route) => route.abort()
    await phone.route('**/api/updates/events**', refuse)
    await phone.route('**/api/health', refuse)
    await expect.poll(() => phoneBanner.getByTestId('banner-step').textContent(), { timeout: 120_000 }).toMatch(/^Server restarting, reconnecting…/)
    // The bar shows what it says.
    const banner = await barState(phoneBanner)
    expect(Math.abs(banner.shown - banner.said)).toBeLessThanOrEqual(1)
    await screenshotView(phone, '21b-mobile-overview-restarting')
    await phone.getByRole('link', { name: 'Software Updates' }).click()
    const panel = phone.getByTestId('update-run')
    await expect.poll(() => panel.getByTestId('run-status').textContent()).toMatch(/^The server is restarting; reconnecting/)
    // The step being run is the restart, whatever the last event the old server sent was.
    expect(await panel.locator('[data-state="running"]').evaluateAll((els) => els.map((e) => e.getAttribute('data-step')))).toEqual(['restart'])
    expect(await panel.getByTestId('close-tab-note').textContent()).toContain('You can close this tab: the update continues on the server.')
    const bar = await barState(panel)
    expect(Math.abs(bar.shown - bar.said)).toBeLessThanOrEqual(1)
    await panel.getByRole('progressbar').scrollIntoViewIfNeeded()
    await screenshotView(phone, '21c-mobile-restarting-panel')
    await phone.unroute('**/api/updates/events**', refuse)
    await phone.unroute('**/api/health', refuse)
    await phone.getByRole('link', { name: 'Overview' }).click()
  }, 120_000)

  test('after the rollback: what failed, its output open, the log to the end, a red bar; no Retry and no stale notice', async () => {
    const failure = desk.getByTestId('run-failure')
    await failure.waitFor({ timeout: 180_000 })
    expect((await app.health())?.version).toBe('1.0.0')
    // The "already running" notice belonged to the run that has ended.
    expect(await desk.getByTestId('joined-run').count()).toBe(0)
    expect(await desk.getByText('already running').count()).toBe(0)

    const run = desk.getByTestId('update-run')
    expect(await run.getAttribute('data-status')).toBe('rolled_back')
    expect(await run.locator('#run-title').textContent()).toBe('Update to 1.1.0 failed')
    expect(await failure.locator('.failure-title').textContent()).toBe('Health check failed')
    expect(await failure.getByTestId('failure-headline').textContent()).toMatch(/^1\.1\.0 is not running: the server exited with status 1$/)
    // The crash output is shown, not folded away.
    const output = failure.getByTestId('failure-output')
    expect(await output.isVisible()).toBe(true)
    expect(await output.textContent()).toContain('v1.1.0 is broken on purpose')
    expect(await failure.getByTestId('hint').locator('code').first().textContent()).toMatch(/\/data\/logs\/server\.log$/)
    expect(await desk.getByTestId('rollback-notice').textContent()).toContain('1.0.0 was restored and runs again')

    // Steps: the rollback right after the failed step, the finish not run and last.
    expect(await stepStates(run)).toEqual(['preflight:done', 'backup:done', 'fetch:done', 'build:done', 'switch:done', 'restart:done', 'health:failed', 'rollback:done', 'commit:skipped'])
    // The log goes past the build: restart, health check with its error, rollback, outcome.
    const log = (await run.getByTestId('run-log').textContent()) ?? ''
    const afterBuild = log.slice(log.indexOf('✓ Build'))
    for (const line of ['▶ Restart', '✓ Restart', '▶ Health check', '✗ Health check failed: 1.1.0 is not running', '▶ Roll back', '✓ Roll back', 'Rolled back: 1.0.0 runs again.']) {
      expect(afterBuild).toContain(line)
    }
    // The bar is full and red.
    const bar = run.getByRole('progressbar', { name: 'Update progress' })
    expect(await bar.getAttribute('aria-valuenow')).toBe('100')
    const fill = await run.locator('.progress-fill').evaluate((el) => ({ color: getComputedStyle(el).backgroundColor, ratio: el.getBoundingClientRect().width / el.parentElement!.clientWidth }))
    expect(fill.color).toBe(DANGER)
    expect(fill.ratio).toBeCloseTo(1, 2)

    // Nothing offers the broken release as the main action: no Retry, no "Update now", no primary button for it.
    expect(await desk.getByRole('button', { name: 'Retry' }).count()).toBe(0)
    expect(await desk.getByRole('button', { name: 'Update now' }).count()).toBe(0)
    expect(await desk.getByRole('heading', { name: 'Version 1.1.0 failed to install' }).isVisible()).toBe(true)
    const again = desk.getByRole('button', { name: 'Try 1.1.0 again' })
    expect(await again.count()).toBe(2) // in the failure panel and in the release's card
    for (const b of await again.all()) expect((await b.getAttribute('class')) ?? '').not.toContain('primary')
    // On Software Updates the panel tells it; the banner does so on the other pages.
    await expect.poll(() => desk.getByTestId('update-banner').evaluateAll((els) => els.map((e) => e.outerHTML.slice(0, 300)))).toEqual([])
    await screenshot(desk, '23-rolled-back')
    await screenshotOf(run, '23-rolled-back-panel')

    // The phone (on Overview) saw the same end.
    const phoneBanner = phone.getByTestId('update-banner')
    await expect.poll(() => phoneBanner.getAttribute('data-mode')).toBe('failed')
    expect(await phoneBanner.textContent()).toContain('1.0.0 was restored and runs again.')
    expect(await phoneBanner.getByRole('button', { name: 'Update now' }).count()).toBe(0)
    expect(await phone.getByTestId('overview-updates').textContent()).toContain('Update to 1.1.0 failed. 1.0.0 was restored and runs again.')
    // Overview has no run panel: nothing of Software Updates stays behind when the page changes.
    expect(await phone.getByTestId('update-run').count()).toBe(0)
    await screenshotView(phone, '24-mobile-overview-failed')
    await phoneBanner.getByRole('button', { name: 'What went wrong' }).click()
    await phone.getByTestId('run-failure').waitFor()
    expect(await phone.getByTestId('update-run').count()).toBe(1)
    expect(await phone.locator('main h1').first().textContent()).toBe('Software Updates')
    await phone.getByTestId('run-failure').scrollIntoViewIfNeeded()
    await screenshotView(phone, '25-mobile-failure-panel')
    await screenshot(phone, '25-mobile-failure-page')
  }, 240_000)

  test('after a reload the failure is still there (from the history) until dismissed', async () => {
    await desk.reload()
    const failure = desk.getByTestId('run-failure')
    await failure.waitFor()
    expect(await failure.locator('.failure-title').textContent()).toBe('Health check failed')
    expect(await failure.getByTestId('failure-output').textContent()).toContain('v1.1.0 is broken on purpose')
    // Its log is replayed from the status file while that still holds this update.
    await expect.poll(() => desk.getByTestId('run-log').textContent()).toContain('✓ Roll back')
    expect(await stepStates(desk.getByTestId('update-run'))).toEqual(['preflight:done', 'backup:done', 'fetch:done', 'build:done', 'switch:done', 'restart:done', 'health:failed', 'rollback:done', 'commit:skipped'])
    await desk.getByRole('link', { name: 'Overview' }).click()
    expect(await desk.getByTestId('update-banner').getAttribute('data-mode')).toBe('failed')
    await desk.getByRole('link', { name: 'Software Updates' }).click()
    await desk.getByTestId('run-failure').waitFor()

    await phone.reload()
    await phone.getByRole('heading', { name: 'Software Updates', level: 1 }).waitFor()
    await phone.getByTestId('history').waitFor()
    await screenshotView(phone, '26-mobile-after-reload')
    if (process.env.E2E_DEBUG) console.log(phone.url(), await phone.locator('main').textContent())
    await phone.getByTestId('run-failure').waitFor()

    await desk.getByTestId('update-run').getByRole('button', { name: 'Dismiss' }).click()
    expect(await desk.getByTestId('update-run').count()).toBe(0)
    // Dismissed, the failure leaves the banner too; the broken release is not announced again.
    expect(await desk.getByTestId('update-banner').count()).toBe(0)
    await desk.reload()
    await desk.getByRole('heading', { name: 'Version 1.1.0 failed to install' }).waitFor()
    expect(await desk.getByTestId('update-run').count()).toBe(0)
    expect(await desk.getByTestId('update-banner').count()).toBe(0)
    expect(await desk.getByTestId('failed-release-note').textContent()).toContain('Installing 1.1.0 failed')
    await desk.getByRole('link', { name: 'Overview' }).click()
    expect(await desk.getByTestId('overview-updates').textContent()).toContain('1.1.0 is the newest release, but installing it failed; you run 1.0.0.')
    await screenshot(desk, '27-dismissed-overview')
  }, 60_000)

  test('a release newer than the failed one is offered as usual', async () => {
    github.setReleases(REPO, [release('v1.2.0', 'Fixed.', '2026-11-21T09:30:00Z'), release('v1.1.0', 'This one crashes at start.', '2026-11-20T09:30:00Z')])
    await desk.getByRole('link', { name: 'Software Updates' }).click()
    await desk.getByRole('button', { name: 'Check for updates' }).click()
    const banner = desk.getByTestId('update-banner')
    await expect.poll(() => banner.getAttribute('data-mode')).toBe('available')
    expect(await banner.textContent()).toContain('Upkeep 1.2.0 is available')
    await desk.getByRole('heading', { name: 'Version 1.2.0 is available' }).waitFor()
    const updateNow = desk.locator('#whats-new').getByRole('button', { name: 'Update now' })
    expect(await updateNow.getAttribute('class')).toContain('primary')
    expect(await desk.getByLabel('Version to install').locator('option').allTextContents()).toEqual(['1.2.0', '1.1.0 (failed before)'])
  })

  test('a hint that is a command shows as code to copy; the error headline starts with a capital letter', async () => {
    // A stray file in the checkout: preflight refuses to update and says how to put it away.
    const stray = path.join(app.appDir, 'stray-notes.txt')
    await writeFile(stray, 'left here by hand\n')
    await chown(stray, OWNER.uid, OWNER.gid)
    try {
      await desk.locator('#whats-new').getByRole('button', { name: 'Update now' }).click()
      await desk.getByRole('dialog', { name: 'Update to 1.2.0?' }).getByRole('button', { name: 'Update to 1.2.0' }).click()
      await expect.poll(() => desk.locator('#run-title').textContent(), { timeout: 120_000 }).toBe('Update to 1.2.0 failed')
      const failure = desk.getByTestId('run-failure')
      expect(await failure.locator('.failure-title').textContent()).toBe('Preflight checks failed')
      expect(await failure.getByTestId('failure-headline').textContent()).toBe('The checkout has local changes: stray-notes.txt')
      expect(await desk.getByTestId('outcome-notice').textContent()).toBe('Nothing was changed: 1.0.0 still runs.')
      const command = failure.getByTestId('command')
      expect(await command.textContent()).toMatch(new RegExp(`git -C ${app.appDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} stash push --include-untracked$`))
      // Code, on lines of its own: it does not wrap like the sentence around it.
      expect(await command.evaluate((el) => getComputedStyle(el).fontFamily)).toMatch(/mono/i)
      await failure.getByRole('button', { name: /^Copy the command / }).click()
      await expect.poll(() => desk.evaluate(() => navigator.clipboard.readText())).toBe(await command.textContent())
      expect(await failure.getByRole('button', { name: /^Copy the command / }).textContent()).toBe('Copied')
      // A failure before anything changed is not rolled back, and the bar still ends red.
      expect(await desk.getByTestId('update-run').locator('[data-step="rollback"]').count()).toBe(0)
      expect(await desk.getByTestId('update-run').locator('.progress-fill').evaluate((el) => getComputedStyle(el).backgroundColor)).toBe(DANGER)
      await screenshotOf(desk.getByTestId('update-run'), '28-preflight-hint-panel')

      await phone.reload()
      await phone.getByTestId('run-failure').waitFor()
      await phone.getByTestId('command').scrollIntoViewIfNeeded()
      await screenshotView(phone, '29-mobile-preflight-hint')
    } finally {
      await rm(stray, { force: true })
    }
    expect(pageErrors).toEqual([])
  }, 180_000)
})
