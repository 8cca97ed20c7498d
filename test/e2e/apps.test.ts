import { chmod, chown, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { launchBrowser, screenshot } from '../support/browser'
import { writeInstalled } from '../../updater/shared/installed'
import { createFixture, createOrigin, OWNER, type Fixture } from '../support/fixture-app'
import { startGitHubStub, type GitHubStub } from '../support/github-stub'
import { githubRelease } from '../support/msw'
import { createUpkeepOrigin, installUpkeep, type UpkeepInstall } from '../support/upkeep-app'
import { recordedRunPanel, recordRunPanel, screenshotView, signIn, stepStates } from './helpers'

// Several apps in Chromium: a real Upkeep 1.0.0 in process mode (GitHub's releases of it served
// by a local stub) beside the fixture app (test/support/fixture-app.ts: its own definition, state
// dir and checkout, updated as its user, nobody, from its git tags). The Upkeep server reads the
// fixture's definition and state (UPKEEP_APPS_DIR, UPKEEP_STATE_DIR) and runs as nobody too.

const REPO = 'acme/upkeep'
const PASSWORD = 'e2e-admin-password'
/** A build command that returns once the file named by its argument exists. */
const WAIT_FOR_GATE = "const fs = require('node:fs'); const t = setInterval(() => fs.existsSync(process.argv[1]) && clearInterval(t), 50)"

describe('apps in Chromium: Upkeep and the fixture app', () => {
  let work: string
  let github: GitHubStub
  let fixture: Fixture
  let app: UpkeepInstall
  let browser: Browser
  let wide: BrowserContext
  let narrow: BrowserContext
  let desk: Page
  let phone: Page
  const pageErrors: string[] = []
  let upkeepStartedAt: string
  let gate: string

  const upkeepHealth = async () => (await (await fetch(`${app.url}/api/health`)).json()) as { version: string; startedAt: string }
  const banner = (p: Page, mode: string, appName?: string) => p.locator(`[data-testid="update-banner"][data-mode="${mode}"]${appName ? `[data-app="${appName}"]` : ''}`)
  const row = (p: Page, name: string) => p.getByTestId('apps').locator(`tr[data-app="${name}"]`)

  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'upkeep-e2e-apps-'))
    // The origins below are read by nobody (the apps' user and the server's).
    await chmod(work, 0o755)
    github = await startGitHubStub()
    github.setReleases(REPO, [githubRelease('v1.1.0', { repo: REPO, body: 'Upkeep, a little better.', name: 'Upkeep 1.1.0', publishedAt: '2026-11-20T09:30:00Z' })])
    const [upkeepOrigin, fixtureOrigin] = await Promise.all([
      createUpkeepOrigin(path.join(work, 'upkeep'), [
        { tag: 'v1.0.0', behaviour: 'good' },
        { tag: 'v1.1.0', behaviour: 'good' },
      ]),
      createOrigin(path.join(work, 'fixture')),
    ])
    fixture = await createFixture(fixtureOrigin)
    // What runs is known to the server from the state dir once Upkeep has installed or updated the
    // app; this one was installed by hand, so its record is written as an install would.
    await writeInstalled(fixture.paths.installed, { version: '1.0.0', tag: 'v1.0.0', commit: fixture.head(), at: new Date().toISOString() })
    await chown(fixture.paths.installed, OWNER.uid, OWNER.gid)
    // Its build waits until the test opens the gate, so the pages can be looked at in the middle of it.
    gate = path.join(work, 'build-gate')
    await fixture.define((d) => {
      const build = d.build as { commands: string[][] }
      build.commands = [['node', '-e', WAIT_FOR_GATE, gate], ...build.commands]
    })
    app = await installUpkeep(upkeepOrigin, 'v1.0.0', {
      GITHUB_API_URL: github.url,
      UPDATE_REPO: REPO,
      UPKEEP_ADMIN_PASSWORD: PASSWORD,
      UPKEEP_APPS_DIR: fixture.env.UPKEEP_APPS_DIR,
      UPKEEP_STATE_DIR: fixture.env.UPKEEP_STATE_DIR,
    })
    upkeepStartedAt = (await upkeepHealth()).startedAt
    browser = await launchBrowser()
    wide = await browser.newContext({ viewport: { width: 1280, height: 900 } })
    narrow = await browser.newContext({ viewport: { width: 375, height: 812 }, isMobile: true, hasTouch: true })
    desk = await wide.newPage()
    phone = await narrow.newPage()
    for (const p of [desk, phone]) {
      p.on('pageerror', (err) => pageErrors.push(String(err)))
      // CSP violations and script errors show up here; the network failures of a restart do not count.
      p.on('console', (m) => {
        if (m.type() === 'error' && !/Failed to load resource|net::ERR_|EventSource/.test(m.text())) pageErrors.push(m.text())
      })
    }
  }, 300_000)

  afterAll(async () => {
    if (process.env.E2E_DEBUG) console.log('SERVER LOG\n' + (await app?.serverLog())?.slice(-6000))
    await browser?.close()
    await app?.stop()
    await fixture?.stop()
    await github?.close()
    await rm(work, { recursive: true, force: true })
  })

  test('the apps list shows both apps with their versions, and the banner counts both updates', async () => {
    await signIn(desk, app.url + '/', PASSWORD)
    await desk.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Apps' }).click()
    await desk.getByRole('heading', { name: 'Apps', level: 1 }).waitFor()
    expect(desk.url()).toBe(app.url + '/apps')
    const upkeep = row(desk, 'upkeep')
    const fix = row(desk, 'fixture')
    await expect.poll(() => upkeep.getByTestId('app-latest').textContent(), { timeout: 30_000 }).toBe('1.1.0')
    await expect.poll(() => fix.getByTestId('app-latest').textContent(), { timeout: 30_000 }).toBe('1.4.0')
    expect(await desk.getByTestId('apps').locator('tbody tr').evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-app')))).toEqual(['upkeep', 'fixture'])
    expect(await upkeep.getByTestId('app-current').textContent()).toBe('1.0.0')
    expect(await fix.getByTestId('app-current').textContent()).toBe('1.0.0')
    expect(await upkeep.getByTestId('app-state').textContent()).toBe('Update available: 1.1.0')
    expect(await fix.getByTestId('app-state').textContent()).toBe('Update available: 1.4.0')
    expect(await fix.getByTestId('app-last-run').textContent()).toBe('No updates yet')
    // Each app's link goes to its page; Upkeep's is Settings → Software Updates.
    expect(await upkeep.getByRole('link', { name: 'Upkeep' }).getAttribute('href')).toBe('/settings/updates')
    expect(await fix.getByRole('link', { name: 'fixture' }).getAttribute('href')).toBe('/apps/fixture')

    const offers = banner(desk, 'available')
    await expect.poll(() => offers.locator('.banner-title').textContent(), { timeout: 30_000 }).toBe('2 updates available')
    expect(await offers.getByTestId('banner-offers').locator('a').allTextContents()).toEqual(['Upkeep 1.1.0', 'fixture 1.4.0'])
    await screenshot(desk, '40-apps')

    await signIn(phone, app.url + '/apps', PASSWORD)
    await row(phone, 'fixture').getByTestId('app-latest').waitFor()
    await expect.poll(() => banner(phone, 'available').locator('.banner-title').textContent(), { timeout: 30_000 }).toBe('2 updates available')
    expect(await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)).toBeLessThanOrEqual(0)
    await screenshotView(phone, '40b-mobile-apps')

    // Overview says how many apps there are and what waits; the banner is the same on every page.
    await phone.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Overview' }).click()
    await expect.poll(() => phone.getByTestId('overview-apps').textContent(), { timeout: 30_000 }).toBe('2 apps: 2 updates available.')
    expect(await phone.getByRole('heading', { name: 'Updates of Upkeep' }).isVisible()).toBe(true)
    expect(await banner(phone, 'available').locator('.banner-title').textContent()).toBe('2 updates available')
    await screenshotView(phone, '40c-mobile-overview-apps')
    await banner(phone, 'available').getByRole('button', { name: 'Review updates' }).click()
    await row(phone, 'fixture').waitFor()
    expect(new URL(phone.url()).pathname).toBe('/apps')
    await desk.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Overview' }).click()
    await expect.poll(() => desk.getByTestId('overview-apps').textContent(), { timeout: 30_000 }).toBe('2 apps: 2 updates available.')
    await screenshot(desk, '40d-overview-apps')
    await desk.getByRole('main').getByRole('button', { name: 'Open Apps' }).click()
    await desk.getByRole('heading', { name: 'Apps', level: 1 }).waitFor()
  }, 120_000)

  test("the banner's link opens the fixture's own page at its own address", async () => {
    await banner(desk, 'available').getByRole('link', { name: 'fixture 1.4.0' }).click()
    await desk.getByRole('heading', { name: 'fixture', level: 1 }).waitFor()
    expect(new URL(desk.url()).pathname).toBe('/apps/fixture')
    await desk.getByRole('heading', { name: 'Version 1.4.0 is available' }).waitFor()
    expect(await desk.getByTestId('current-version').textContent()).toBe('1.0.0')
    // Upkeep's settings are Upkeep's: not on another app's page.
    expect(await desk.getByRole('heading', { name: 'Update source' }).count()).toBe(0)
    expect(await desk.getByTestId('release-source').textContent()).toContain(path.join(work, 'fixture', 'origin.git'))
    expect(await desk.getByTestId('via-git').textContent()).toContain('release tags of its git remote')
    expect(await desk.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Apps' }).getAttribute('aria-current')).toBe('true')
    expect(await desk.title()).toBe('fixture · Upkeep')
  })

  test('updating the fixture from its page: live progress, then its new version; Upkeep is untouched', async () => {
    await desk.evaluate(() => ((window as unknown as { __noReload: boolean }).__noReload = true))
    await desk.getByLabel('Version to install').selectOption('1.1.0')
    await desk.locator('#whats-new').getByRole('button', { name: 'Update now' }).click()
    const dialog = desk.getByRole('dialog', { name: 'Update to 1.1.0?' })
    await dialog.waitFor()
    expect(await dialog.textContent()).toContain('back up the data of fixture')
    await dialog.getByRole('button', { name: 'Update to 1.1.0' }).click()

    const run = desk.getByTestId('update-run')
    await run.waitFor()
    await recordRunPanel(desk)
    await desk.locator('[data-step="build"][data-state="running"]').waitFor({ timeout: 60_000 })
    expect(await stepStates(run)).toEqual(['preflight:done', 'backup:done', 'fetch:done', 'build:running', 'switch:pending', 'restart:pending', 'health:pending', 'commit:pending'])
    expect(await run.locator('#run-title').textContent()).toBe('Updating 1.0.0 → 1.1.0')
    // On its own page the banner shows the run without a link to it.
    const running = banner(desk, 'running', 'fixture')
    expect(await running.getByRole('progressbar').getAttribute('aria-valuenow')).toMatch(/^\d+$/)
    expect(await running.locator('.banner-app').textContent()).toBe('fixture')
    expect(await running.getByRole('button', { name: /Show the progress/ }).count()).toBe(0)
    await screenshot(desk, '41-fixture-building')

    // The phone, on the apps list, sees the same run with its progress, and a way to it.
    await phone.reload()
    const phoneRow = row(phone, 'fixture')
    await expect.poll(() => phoneRow.getAttribute('data-state'), { timeout: 30_000 }).toBe('running')
    expect(await phoneRow.getByRole('progressbar', { name: 'Update progress of fixture' }).getAttribute('aria-valuenow')).toMatch(/^\d+$/)
    await screenshotView(phone, '42-mobile-apps-running')
    await banner(phone, 'running', 'fixture').getByRole('button', { name: 'Show the progress of fixture' }).click()
    await phone.getByTestId('update-run').waitFor()
    expect(new URL(phone.url()).pathname).toBe('/apps/fixture')
    await screenshotView(phone, '42b-mobile-fixture-running')
    await phone.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Apps' }).click()
    // The elapsed time counts up while the build waits.
    await expect.poll(() => run.getByTestId('elapsed').textContent(), { timeout: 30_000 }).not.toBe('Elapsed 0:00')

    await writeFile(gate, '')
    await expect.poll(() => run.getAttribute('data-status'), { timeout: 120_000 }).toBe('complete')
    expect(await run.locator('#run-title').textContent()).toBe('Updated to 1.1.0')
    expect(await run.getByTestId('run-status').textContent()).toBe('1.1.0 runs and answers its health check.')
    await expect.poll(() => desk.getByTestId('current-version').textContent(), { timeout: 30_000 }).toBe('1.1.0')
    // The page was not reloaded: Upkeep's own server did not restart.
    expect(await desk.evaluate(() => (window as unknown as { __noReload?: boolean }).__noReload)).toBe(true)
    const samples = await recordedRunPanel(desk)
    const percents = samples.map((s) => s.percent)
    for (let i = 1; i < percents.length; i++) expect(percents[i]).toBeGreaterThanOrEqual(percents[i - 1]!)
    expect(new Set(percents).size).toBeGreaterThanOrEqual(4)
    expect(samples.at(-1)).toMatchObject({ runStatus: 'complete', percent: 100, tone: 'complete' })
    expect((await fixture.health())?.version).toBe('1.1.0')
    const history = desk.getByTestId('history').locator('tbody tr').first()
    await expect.poll(() => history.textContent(), { timeout: 30_000 }).toMatch(/1\.0\.0.*1\.1\.0.*Complete/)
    await screenshot(desk, '43-fixture-updated')

    // Upkeep: same version, same server process, nothing in its history.
    const health = await upkeepHealth()
    expect(health.version).toBe('1.0.0')
    expect(health.startedAt).toBe(upkeepStartedAt)
    await desk.getByRole('link', { name: 'Software Updates' }).click()
    await desk.getByRole('heading', { name: 'Software Updates', level: 1 }).waitFor()
    expect(await desk.getByTestId('current-version').textContent()).toBe('1.0.0')
    expect(await desk.getByRole('heading', { name: 'Version 1.1.0 is available' }).isVisible()).toBe(true)
    expect(await desk.getByRole('heading', { name: 'Update source' }).isVisible()).toBe(true)
    await expect.poll(() => desk.locator('main').textContent(), { timeout: 30_000 }).toContain('No updates yet.')
    expect(await desk.getByTestId('update-run').count()).toBe(0)

    // The phone's list caught up by itself: the new version and how the update ended.
    await expect.poll(() => phoneRow.getByTestId('app-current').textContent(), { timeout: 40_000 }).toBe('1.1.0')
    expect(await phoneRow.getByTestId('app-last-run').textContent()).toMatch(/^Updated 1\.0\.0 → 1\.1\.0/)
    expect(await row(phone, 'upkeep').getByTestId('app-current').textContent()).toBe('1.0.0')
    // Its banner tells how the update ended, and the fixture's 1.4.0 and Upkeep's 1.1.0 are still both there to install.
    const done = banner(phone, 'complete', 'fixture')
    expect(await done.locator('.banner-title').textContent()).toBe('fixtureUpdated to 1.1.0')
    await expect.poll(() => banner(phone, 'available').locator('.banner-title').textContent(), { timeout: 30_000 }).toBe('2 updates available')
    await screenshotView(phone, '44-mobile-apps-updated')
    await done.getByRole('button', { name: 'Dismiss the notice about the update of fixture to 1.1.0' }).click()
    expect(await done.count()).toBe(0)
  }, 240_000)

  test("a broken release of the fixture rolls back; its page shows the failure, the banner tells it elsewhere", async () => {
    await desk.goto(app.url + '/apps/fixture')
    await desk.getByRole('heading', { name: 'Version 1.4.0 is available' }).waitFor()
    await desk.locator('#whats-new').getByRole('button', { name: 'Update now' }).click()
    await desk.getByRole('dialog', { name: 'Update to 1.4.0?' }).getByRole('button', { name: 'Update to 1.4.0' }).click()
    const failure = desk.getByTestId('run-failure')
    await failure.waitFor({ timeout: 180_000 })
    expect(await failure.locator('.failure-title').textContent()).toBe('Health check failed')
    expect(await failure.getByTestId('failure-output').textContent()).toContain('missing SECRET_KEY')
    expect(await desk.getByTestId('rollback-notice').textContent()).toContain('1.1.0 was restored and runs again')
    expect(await stepStates(desk.getByTestId('update-run'))).toContain('rollback:done')
    expect((await fixture.health())?.version).toBe('1.1.0')
    expect((await upkeepHealth()).startedAt).toBe(upkeepStartedAt)
    await desk.getByRole('heading', { name: 'Version 1.4.0 failed to install' }).waitFor()
    // On the fixture's page the panel tells it, not the banner.
    expect(await banner(desk, 'failed').count()).toBe(0)
    await screenshot(desk, '45-fixture-rolled-back')

    // Elsewhere the banner does, and offers what is left to install: Upkeep's 1.1.0 alone.
    await desk.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Apps' }).click()
    const failed = banner(desk, 'failed', 'fixture')
    await failed.waitFor()
    expect(await failed.textContent()).toContain('Update to 1.4.0 failed')
    expect(await banner(desk, 'available').locator('.banner-title').textContent()).toBe('Upkeep 1.1.0 is available')
    await expect.poll(() => row(desk, 'fixture').getByTestId('app-state').textContent(), { timeout: 30_000 }).toBe('1.4.0 failed to install')
    expect(await row(desk, 'fixture').getByTestId('app-last-run').textContent()).toMatch(/^Rolled back 1\.1\.0 → 1\.4\.0/)
    await screenshot(desk, '46-apps-after-failure')

    // After a reload it is still told (from the history), and "What went wrong" leads to the panel.
    await phone.reload()
    const phoneFailed = banner(phone, 'failed', 'fixture')
    await phoneFailed.waitFor()
    await screenshotView(phone, '47-mobile-failed-banner')
    await phoneFailed.getByRole('button', { name: 'What went wrong with fixture' }).click()
    await phone.getByTestId('run-failure').waitFor()
    expect(new URL(phone.url()).pathname).toBe('/apps/fixture')
    await expect.poll(() => phone.getByTestId('run-log').textContent(), { timeout: 30_000 }).toContain('✓ Roll back')
    await phone.getByTestId('run-failure').scrollIntoViewIfNeeded()
    await screenshotView(phone, '48-mobile-fixture-failure')

    // Dismissed on the phone, it leaves the fixture's banner notice there for good.
    await phone.getByTestId('update-run').getByRole('button', { name: 'Dismiss' }).click()
    await phone.reload()
    await phone.getByRole('heading', { name: 'Version 1.4.0 failed to install' }).waitFor()
    expect(await phone.getByTestId('update-run').count()).toBe(0)
    await phone.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Overview' }).click()
    await banner(phone, 'available').waitFor()
    expect(await banner(phone, 'failed').count()).toBe(0)
    expect(await phone.getByTestId('overview-apps').textContent()).toBe('2 apps: 1 update available, 1 with a failed update.')
  }, 240_000)

  test('a broken definition is listed with its error and what to do', async () => {
    await writeFile(path.join(fixture.env.UPKEEP_APPS_DIR!, 'notes.json'), JSON.stringify({ name: 'notes', checkout: 'relative/path' }), { mode: 0o644 })
    try {
      await desk.reload()
      const broken = row(desk, 'notes')
      await broken.waitFor()
      expect(await broken.getAttribute('data-state')).toBe('broken')
      const error = broken.getByTestId('app-error')
      expect(await error.locator('strong').textContent()).toBe('Its definition is broken: the app is not updated')
      expect(await error.textContent()).toContain('notes.json')
      expect(await error.getByTestId('hint').textContent()).toBeTruthy()
      await screenshot(desk, '49-apps-broken-definition')
      await desk.setViewportSize({ width: 375, height: 812 })
      expect(await desk.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)).toBeLessThanOrEqual(0)
      await broken.scrollIntoViewIfNeeded()
      await screenshotView(desk, '49b-mobile-broken-definition')
      await desk.setViewportSize({ width: 1280, height: 900 })
    } finally {
      await rm(path.join(fixture.env.UPKEEP_APPS_DIR!, 'notes.json'), { force: true })
    }
  })

  test('keyboard only: Tab reaches Apps in the navigation and the fixture in the list; Enter opens them', async () => {
    await desk.goto(app.url + '/')
    await desk.getByRole('heading', { name: 'Overview' }).waitFor()
    const tabTo = async (test: () => boolean | Promise<boolean>) => {
      for (let i = 0; i < 40; i++) {
        await desk.keyboard.press('Tab')
        if (await test()) return true
      }
      return false
    }
    const focused = () => desk.evaluate(() => ({ text: document.activeElement?.textContent?.trim(), href: document.activeElement?.getAttribute('href') }))
    expect(await tabTo(async () => (await focused()).href === '/apps')).toBe(true)
    await desk.keyboard.press('Enter')
    await desk.getByRole('heading', { name: 'Apps', level: 1 }).waitFor()
    expect(await tabTo(async () => (await focused()).href === '/apps/fixture' && (await focused()).text === 'fixture')).toBe(true)
    await desk.keyboard.press('Enter')
    await desk.getByRole('heading', { name: 'fixture', level: 1 }).waitFor()
    expect(pageErrors).toEqual([])
  })
})
