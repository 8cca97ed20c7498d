import { createHmac } from 'node:crypto'
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { launchBrowser, screenshot } from '../support/browser'
import { OWNER } from '../support/fixture-app'
import { startGitHubStub, type GitHubStub } from '../support/github-stub'
import { githubRelease } from '../support/msw'
import { run } from '../support/run'
import { createUpkeepOrigin, installUpkeep, type UpkeepInstall } from '../support/upkeep-app'
import { screenshotView, signIn } from './helpers'

// Must show 5: the "Automatic updates" card of Software Updates in Debian's Chromium, against a
// real Upkeep server in process mode (its scheduler running), and `upkeep status` of the same
// install. GitHub is a local stub: 1.0.1 was published two hours ago, 1.1.0 a month ago.

const REPO = 'acme/upkeep'
const PASSWORD = 'e2e-admin-password'
const SECRET = 'a long random webhook secret'

describe('Automatic updates in Chromium', () => {
  let work: string
  let github: GitHubStub
  let app: UpkeepInstall
  let browser: Browser
  let wide: BrowserContext
  let page: Page
  let receiver: Server
  let receiverUrl: string
  const received: { headers: IncomingHttpHeaders; body: string }[] = []
  const pageErrors: string[] = []

  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'upkeep-e2e-auto-'))
    github = await startGitHubStub()
    const hoursAgo = (h: number) => new Date(Date.now() - h * 3_600_000).toISOString().replace(/\.\d{3}Z$/, 'Z')
    github.setReleases(REPO, [
      githubRelease('v1.1.0', { repo: REPO, name: 'Upkeep 1.1.0', publishedAt: hoursAgo(24 * 30) }),
      githubRelease('v1.0.1', { repo: REPO, name: 'Upkeep 1.0.1', publishedAt: hoursAgo(2) }),
    ])
    const origin = await createUpkeepOrigin(work, [{ tag: 'v1.0.0', behaviour: 'good' }])
    app = await installUpkeep(origin, 'v1.0.0', { GITHUB_API_URL: github.url, UPDATE_REPO: REPO, UPKEEP_ADMIN_PASSWORD: PASSWORD })
    receiver = createServer((req, res) => {
      let body = ''
      req.on('data', (c: Buffer) => (body += c.toString('utf8')))
      req.on('end', () => {
        received.push({ headers: req.headers, body })
        res.writeHead(200, { 'content-type': 'text/plain' }).end('thanks from the receiver')
      })
    })
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r))
    receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/upkeep`
    browser = await launchBrowser()
    wide = await browser.newContext({ viewport: { width: 1280, height: 900 } })
    page = await wide.newPage()
    page.on('pageerror', (err) => pageErrors.push(String(err)))
  }, 300_000)

  afterAll(async () => {
    await browser?.close()
    await app?.stop()
    await github?.close()
    await new Promise((r) => receiver?.close(r))
    await rm(work, { recursive: true, force: true })
  })

  const card = () => page.getByTestId('auto-update-card')
  const reason = () => card().getByTestId('auto-reason').textContent()
  /** `upkeep status` of this install, as the server's user. */
  const status = async () => {
    const r = await run(process.execPath, [path.join(app.appDir, 'current', 'upkeep.mjs'), 'status'], { env: app.env, uid: OWNER.uid, gid: OWNER.gid, cwd: app.appDir, timeoutMs: 60_000 })
    expect(r.code, r.stderr).toBe(0)
    return r.stdout
  }
  const save = async () => {
    await card().getByRole('button', { name: 'Save update policy' }).click()
    await expect.poll(() => card().getByTestId('auto-message').textContent()).toBe('Saved.')
  }

  test('the default: new releases are announced, none installs itself; the reason says so', async () => {
    await signIn(page, app.url + '/settings/updates', PASSWORD)
    await card().waitFor()
    await expect.poll(reason).toBe('Notify only: 1.1.0 is available')
    expect(await card().getByLabel('Which releases install themselves').inputValue()).toBe('notify')
    expect(await status()).toMatch(/Automatic: +notify only: 1\.1\.0 is available\n/)
  })

  test('a patch policy: 1.0.1 waits for its minimum age, 1.1.0 is a minor it never takes', async () => {
    await card().getByLabel('Which releases install themselves').selectOption('patch')
    await card().getByLabel('Minimum release age (hours)').fill('24')
    await card().getByLabel('Only in a maintenance window').check()
    await card().getByLabel('Window starts (systemd calendar)').fill('*-*-* 03:00 UTC')
    await card().getByLabel('Lasts (minutes)').fill('90')
    await save()
    await expect.poll(reason).toBe('1.0.1: Release is 2 h old, minimum 24 h')
    expect(await card().getByTestId('auto-passed-over').textContent()).toBe('1.1.0: patch policy does not take minor release 1.1.0')
    // When it will install: the first window after it is old enough.
    expect(await card().getByTestId('auto-next-window').textContent()).toMatch(/\(in \d+ hours?\)$/)
    expect(await card().getByTestId('auto-not-before').isVisible()).toBe(true)
    await screenshot(page, '40-auto-updates-patch-policy')

    const out = await status()
    expect(out).toContain('Policy:        patch releases install themselves; at least 24 h after release\n')
    expect(out).toMatch(/Window: +\*-\*-\* 03:00 UTC for 90 min; next opens \d{4}-\d\d-\d\d 03:00 UTC \(in \d+ (min|h)\)\n/)
    expect(out).toContain('Automatic:     release is 2 h old, minimum 24 h\n')
    expect(out).toContain('               1.1.0: patch policy does not take minor release 1.1.0\n')
  })

  test('a window Upkeep cannot read is refused with what to write instead', async () => {
    await card().getByLabel('Window starts (systemd calendar)').fill('*/15 03:00')
    await card().getByRole('button', { name: 'Save update policy' }).click()
    const msg = card().getByTestId('auto-message')
    await expect.poll(() => msg.getAttribute('class')).toBe('notice error')
    expect(await msg.textContent()).toContain('Calendar expression "*/15 03:00"')
    expect(await msg.getByTestId('hint').textContent()).toContain('Mon..Fri 02:30')
    await card().getByLabel('Window starts (systemd calendar)').fill('*-*-* 03:00 UTC')
    await save()
  })

  test('pause this app, then all apps; resume', async () => {
    await card().getByLabel('Pause automatic updates of this app').check()
    await save()
    await expect.poll(reason).toBe('Paused')

    await card().getByLabel('Pause automatic updates of this app').uncheck()
    await save()
    await card().getByRole('button', { name: 'Pause all apps' }).click()
    await card().getByTestId('paused-all').waitFor()
    await expect.poll(reason).toBe('Paused for all apps')
    expect(await status()).toContain('Automatic:     paused for all apps\n')
    await screenshot(page, '41-auto-updates-paused-all')
    await card().getByRole('button', { name: 'Resume all apps' }).click()
    await expect.poll(reason).toBe('1.0.1: Release is 2 h old, minimum 24 h')
    expect(await card().getByTestId('paused-all').count()).toBe(0)
  })

  test('a webhook with a secret: "Send test" shows what the receiver answered; the secret never comes back', async () => {
    await card().getByLabel('Webhook URL').fill(receiverUrl)
    await card().getByLabel('Signing secret (optional)').fill(SECRET)
    await card().getByRole('button', { name: 'Add webhook' }).click()
    const item = card().locator(`[data-webhook="${receiverUrl}"]`)
    await item.waitFor()
    expect(await item.textContent()).toContain('json · signed · all events')
    expect(await card().getByLabel('Signing secret (optional)').inputValue()).toBe('')
    expect(await page.content()).not.toContain(SECRET)

    await item.getByRole('button', { name: 'Send test' }).click()
    const result = item.getByTestId('webhook-test-result')
    await result.waitFor()
    expect(await result.textContent()).toBe('The receiver answered HTTP 200thanks from the receiver')
    expect(received).toHaveLength(1)
    const r = received[0]!
    expect(JSON.parse(r.body)).toMatchObject({ event: 'test', app: 'upkeep' })
    const want = 'sha256=' + createHmac('sha256', SECRET).update(`${r.headers['x-upkeep-timestamp']}.${r.body}`).digest('hex')
    expect(r.headers['x-upkeep-signature']).toBe(want)
    await screenshot(page, '42-auto-updates-webhook-test')
    expect(pageErrors).toEqual([])
  })

  test('on a phone the card reads top to bottom', async () => {
    const narrow = await browser.newContext({ viewport: { width: 375, height: 812 }, isMobile: true, hasTouch: true })
    const phone = await narrow.newPage()
    await signIn(phone, app.url + '/settings/updates', PASSWORD)
    const c = phone.getByTestId('auto-update-card')
    await c.scrollIntoViewIfNeeded()
    await expect.poll(() => c.getByTestId('auto-reason').textContent()).toBe('1.0.1: Release is 2 h old, minimum 24 h')
    // Nothing sticks out sideways.
    expect(await phone.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375)
    await c.getByTestId('auto-facts').evaluate((el) => el.scrollIntoView({ block: 'start' }))
    await screenshotView(phone, '43-mobile-auto-updates')
    await narrow.close()
  })
})
