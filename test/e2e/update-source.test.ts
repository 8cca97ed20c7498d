import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { launchBrowser, screenshot } from '../support/browser'
import { freePort } from '../support/run'
import { createUpkeepOrigin, installUpkeep, type UpkeepInstall } from '../support/upkeep-app'
import { screenshotView, signIn } from './helpers'

// "Up to date" is said only when it is known. A real Upkeep 1.0.0 in process mode whose origin
// is a local path (no GitHub repository to check) and whose GITHUB_API_URL points at a port
// nobody listens on: first no update source at all, then a stored repository GitHub cannot be
// asked about, so the release list comes from `git ls-remote` of origin (which has no newer tag).

const PASSWORD = 'e2e-admin-password'

describe('update source states in Chromium', () => {
  let work: string
  let app: UpkeepInstall
  let browser: Browser
  let wide: BrowserContext
  let narrow: BrowserContext
  let desk: Page
  let phone: Page
  const pageErrors: string[] = []

  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'upkeep-e2e-source-'))
    const origin = await createUpkeepOrigin(work, [{ tag: 'v1.0.0', behaviour: 'good' }])
    const closed = await freePort()
    app = await installUpkeep(origin, 'v1.0.0', { GITHUB_API_URL: `http://127.0.0.1:${closed}`, UPKEEP_ADMIN_PASSWORD: PASSWORD })
    browser = await launchBrowser()
    wide = await browser.newContext({ viewport: { width: 1280, height: 900 } })
    narrow = await browser.newContext({ viewport: { width: 375, height: 812 }, isMobile: true, hasTouch: true })
    desk = await wide.newPage()
    phone = await narrow.newPage()
    for (const p of [desk, phone]) p.on('pageerror', (err) => pageErrors.push(String(err)))
  }, 300_000)

  afterAll(async () => {
    await browser?.close()
    await app?.stop()
    await rm(work, { recursive: true, force: true })
  })

  test('no update source: nothing claims to be up to date, and the way out is named', async () => {
    await signIn(phone, app.url + '/', PASSWORD)
    const summary = phone.getByTestId('overview-updates')
    await expect.poll(() => summary.textContent()).toContain('Upkeep cannot check for updates: no update source is set.')
    expect(await summary.textContent()).not.toMatch(/up to date|last checked never/i)
    // The hint, on a page other than Software Updates, points there; its variable is code.
    expect(await summary.getByTestId('hint').textContent()).toContain('Settings → Software Updates')
    expect(await summary.locator('code').first().textContent()).toBe('UPDATE_REPO=owner/name')
    await screenshotView(phone, '30-mobile-overview-no-source')

    await signIn(desk, app.url + '/settings/updates', PASSWORD)
    const facts = desk.getByTestId('check-error')
    await facts.waitFor()
    expect(await facts.locator('strong').textContent()).toBe('Upkeep does not know where updates come from')
    // The error starts with a capital letter; on Software Updates the hint points down the page, not to itself.
    expect(await facts.locator('div').first().textContent()).toMatch(/^The origin remote .* is not a repository on /)
    const hint = (await facts.getByTestId('hint').textContent()) ?? ''
    expect(hint).toContain('under Update source below')
    expect(hint).not.toContain('Software Updates')
    expect(await desk.getByTestId('update-state').textContent()).toBe('Whether a newer version exists is not known: set where updates come from under Update source below.')
    expect(await desk.getByTestId('last-checked').textContent()).toBe('Not yet')
    expect(await desk.getByTestId('no-source').isVisible()).toBe(true)
    expect(await desk.locator('main').textContent()).not.toMatch(/you are up to date/i)
    await screenshot(desk, '31-no-source')
  })

  test('GitHub unreachable, tags listed from origin: "not known", never "You are up to date"', async () => {
    await desk.getByLabel('Stored repository').fill('acme/upkeep')
    await desk.getByRole('button', { name: 'Save source settings' }).click()
    await expect.poll(() => desk.getByTestId('via-git').count(), { timeout: 30_000 }).toBe(1)
    expect(await desk.getByTestId('via-git').textContent()).toContain("the release tags of this checkout's git remote origin, not the GitHub Releases of acme/upkeep")
    const error = desk.getByTestId('check-error')
    expect(await error.locator('strong').textContent()).toBe('The last check for updates failed')
    expect(await error.locator('div').first().textContent()).toMatch(/^Cannot reach 127\.0\.0\.1:\d+/)
    expect(await desk.getByTestId('update-state').textContent()).toBe('Whether a newer version exists is not known until GitHub answers.')
    expect(await desk.getByTestId('last-checked').textContent()).toMatch(/^just now \(tags of the git remote origin; GitHub could not be reached\)$/)
    expect(await desk.locator('main').textContent()).not.toMatch(/you are up to date/i)
    await screenshot(desk, '32-github-unreachable')

    await phone.reload()
    const summary = phone.getByTestId('overview-updates')
    await expect.poll(() => summary.textContent()).toMatch(/^Not known whether you are up to date: the last check failed \(Cannot reach 127\.0\.0\.1:\d+/)
    await screenshotView(phone, '33-mobile-overview-unreachable')
    await phone.getByRole('link', { name: 'Software Updates' }).click()
    await phone.getByTestId('check-error').waitFor()
    await screenshotView(phone, '34-mobile-unreachable')
    expect(pageErrors).toEqual([])
  })
})
