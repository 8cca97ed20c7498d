import { spawn, type ChildProcess } from 'node:child_process'
import { chmod, mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, onTestFailed, test } from 'vitest'
import { readPidFile } from '../../updater/shared/pidfile'
import { launchBrowser, screenshot } from '../support/browser'
import { OWNER } from '../support/fixture-app'
import { commitAll, copyProject, initRepo } from '../support/git-fixtures'
import { run } from '../support/run'
import { SYSTEM_PATH } from '../support/unprivileged'
import { signIn, stepStates } from './helpers'

// The Quick start's first command, `npm run demo`, from a fresh checkout, as a newcomer runs it:
// as root (from a checkout no other user can read, as under /root), and as a normal user
// (nobody, in a checkout of its own). Then Chromium, told only what the demo printed: sign in,
// update the sample app to 1.1.0, then to the broken 1.2.0, which rolls back by itself. Then
// Ctrl-C, after which none of the demo's processes may be left.

interface Printed {
  dir: string
  url: string
  password: string
  sampleUrl: string
}

/** What the demo printed: where it is, Upkeep's address and password, the sample's address. */
function parsePrinted(out: string): Printed | undefined {
  const dir = /^Upkeep demo in (\S+)/m.exec(out)?.[1]
  const url = /^\s+Web UI\s+(http:\/\/\S+)$/m.exec(out)?.[1]
  const password = /^\s+Password\s+(\S+)$/m.exec(out)?.[1]
  const sampleUrl = /^\s+Sample app\s+(http:\/\/\S+)/m.exec(out)?.[1]
  return dir && url && password && sampleUrl && out.includes('Ctrl-C stops everything.') ? { dir, url, password, sampleUrl } : undefined
}

/** Processes that name the demo directory in their command line or environment (/proc). */
async function processesOf(dir: string): Promise<string[]> {
  const found: string[] = []
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue
    const [cmdline, environ] = await Promise.all(['cmdline', 'environ'].map((f) => readFile(`/proc/${name}/${f}`, 'latin1').catch(() => '')))
    if (`${cmdline}\0${environ}`.includes(dir)) found.push(`${name} ${cmdline!.replaceAll('\0', ' ').trim()}`)
  }
  return found
}

/** Processes still in the process group `pgid` (the demo's, started as its leader). */
async function processGroup(pgid: number): Promise<string[]> {
  const found: string[] = []
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue
    const stat = await readFile(`/proc/${name}/stat`, 'utf8').catch(() => '')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    if (stat && Number(fields[2]) === pgid && fields[0] !== 'Z') found.push(`${name} ${stat.slice(0, stat.lastIndexOf(')') + 1)}`)
  }
  return found
}

/** What the demo's logs say, for a failed test: the updater's, the sample app's, the last history entries. */
async function diagnostics(dir: string, output: string): Promise<string> {
  const tail = async (file: string, lines: number) => `--- ${path.relative(dir, file)}\n${(await readFile(file, 'utf8').catch((err: Error) => err.message)).trim().split('\n').slice(-lines).join('\n')}`
  const files: [string, number][] = [
    [path.join(dir, 'upkeep-data', 'logs', 'updater.log'), 40],
    [path.join(dir, 'upkeep-data', 'logs', 'server.log'), 20],
    [path.join(dir, 'state', 'sample', 'logs', 'app.log'), 20],
    [path.join(dir, 'state', 'sample', 'update-history.jsonl'), 2],
  ]
  return [`--- npm run demo\n${output.trim().split('\n').slice(-20).join('\n')}`, ...(await Promise.all(files.map(([f, n]) => tail(f, n))))].join('\n')
}

const isAnswering = (url: string) => fetch(url, { signal: AbortSignal.timeout(2000) }).then(() => true, () => false)

/** The sample app's own page: its version and visit count (each load counts one). */
async function samplePage(page: Page, url: string): Promise<{ version: string; visits: number }> {
  await page.goto(url)
  return { version: (await page.locator('#version').textContent())!, visits: Number(await page.locator('#visits').textContent()) }
}

describe.each([
  { as: 'root', uid: 0 },
  { as: 'nobody', uid: OWNER.uid },
])('npm run demo as $as', ({ as, uid }) => {
  let work: string
  let demo: ChildProcess
  let output = ''
  let exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  let printed: Printed
  let browser: Browser

  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), `upkeep-e2e-demo-${as}-`))
    // As root: a checkout only root can read (no other user may enter work), like one under /root.
    // As nobody: a checkout of its own; node_modules is this one's, read-only, through a symlink.
    await chmod(work, uid === 0 ? 0o700 : 0o755)
    const checkout = path.join(work, 'upkeep')
    await copyProject(checkout, { linkNodeModules: true })
    initRepo(checkout)
    commitAll(checkout, 'a fresh clone')
    const home = path.join(work, 'home')
    await mkdir(home)
    if (uid !== 0) await run('chown', ['-R', `${OWNER.uid}:${OWNER.gid}`, work])
    demo = spawn('npm', ['run', 'demo'], {
      cwd: checkout,
      // A group of its own, so Ctrl-C reaches the demo as a terminal sends it: to the whole group.
      detached: true,
      env: { PATH: SYSTEM_PATH, HOME: home, LANG: 'C.UTF-8', npm_config_cache: path.join(home, '.npm'), npm_config_update_notifier: 'false' },
      ...(uid === 0 ? {} : { uid: OWNER.uid, gid: OWNER.gid }),
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    demo.stdout!.on('data', (d) => (output += d))
    demo.stderr!.on('data', (d) => (output += d))
    exited = new Promise((resolve) => demo.once('close', (code, signal) => resolve({ code, signal })))
    const deadline = Date.now() + 240_000
    for (;;) {
      const p = parsePrinted(output)
      if (p) {
        printed = p
        break
      }
      if (demo.exitCode !== null || Date.now() > deadline) throw new Error(`npm run demo did not get ready (${demo.exitCode === null ? 'timeout' : `exit ${demo.exitCode}`}):\n${output}`)
      await new Promise((r) => setTimeout(r, 200))
    }
    browser = await launchBrowser()
  }, 300_000)

  afterAll(async () => {
    await browser?.close()
    if (demo && demo.exitCode === null && demo.signalCode === null) {
      process.kill(-demo.pid!, 'SIGINT')
      await exited
    }
    if (printed) await rm(printed.dir, { recursive: true, force: true })
    if (work) await rm(work, { recursive: true, force: true })
  }, 120_000)

  test('prints where it runs, the address, the password and what to click; the sample app serves 1.0.0', async () => {
    expect(output).toContain('[3/4] Installing sample 1.0.0 with Upkeep\'s updater: upkeep --app sample update v1.0.0 --force')
    expect(output).toMatch(/✓ health .*\n.*✓ soak .*\n.*✓ commit/)
    expect(output).toContain('1. Sign in, then Apps → sample.')
    expect(output).toContain(`(also in ${printed.dir}/admin-password.txt)`)
    expect((await readFile(path.join(printed.dir, 'admin-password.txt'), 'utf8')).trim()).toBe(printed.password)
    if (uid === 0) expect(output).toContain('the sample app runs and builds as nobody')
    expect(await (await fetch(`${printed.sampleUrl}/health`)).json()).toEqual({ status: 'ok', version: '1.0.0' })
    // The sample app runs as the unprivileged user, its checkout is that user's.
    const pf = await readPidFile(path.join(printed.dir, 'state', 'sample', 'app.pid'))
    expect((await readFile(`/proc/${pf!.pid}/status`, 'utf8')).match(/^Uid:\s+(\d+)/m)?.[1]).toBe(String(OWNER.uid))
  })

  test('in Chromium: update to 1.1.0, then 1.2.0 fails to start and rolls back by itself; the data is intact', async () => {
    onTestFailed(async () => console.log(await diagnostics(printed.dir, output)))
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } })
    const page = await context.newPage()
    const sample = await context.newPage()
    await signIn(page, printed.url + '/', printed.password)
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Apps' }).click()
    const row = page.getByTestId('apps').locator('tr[data-app="sample"]')
    await expect.poll(() => row.getByTestId('app-state').textContent(), { timeout: 30_000 }).toBe('Update available: 1.2.0')
    await screenshot(page, `59-demo-${as}-apps`)
    await row.getByRole('link', { name: 'sample' }).click()
    await page.getByRole('heading', { name: 'sample', level: 1 }).waitFor()
    await expect.poll(() => page.getByTestId('current-version').textContent(), { timeout: 30_000 }).toBe('1.0.0')
    const before = await samplePage(sample, printed.sampleUrl)
    expect(before.version).toBe('1.0.0')
    await screenshot(page, `60-demo-${as}-sample`)

    // 1.1.0: picked among the newer releases, confirmed, done within a minute.
    await page.getByLabel('Version to install').selectOption('1.1.0')
    await page.locator('#whats-new').getByRole('button', { name: 'Update now' }).click()
    await page.getByRole('dialog', { name: 'Update to 1.1.0?' }).getByRole('button', { name: 'Update to 1.1.0' }).click()
    const updateStarted = Date.now()
    const run1 = page.getByTestId('update-run')
    await expect.poll(() => run1.getAttribute('data-status'), { timeout: 60_000 }).toBe('complete')
    const updateMs = Date.now() - updateStarted
    expect(await run1.locator('#run-title').textContent()).toBe('Updated to 1.1.0')
    await expect.poll(() => page.getByTestId('current-version').textContent(), { timeout: 30_000 }).toBe('1.1.0')
    const updated = await samplePage(sample, printed.sampleUrl)
    expect(updated).toEqual({ version: '1.1.0', visits: before.visits + 1 })
    expect(await sample.locator('.news').textContent()).toContain('New in 1.1.0')
    await screenshot(page, `61-demo-${as}-updated`)
    await screenshot(sample, `61b-demo-${as}-sample-page-1.1.0`)

    // 1.2.0: builds, migrates the counter, crashes at start; rolled back within a minute.
    await page.goto(`${printed.url}/apps/sample`)
    await page.getByRole('heading', { name: 'Version 1.2.0 is available' }).waitFor()
    await page.locator('#whats-new').getByRole('button', { name: 'Update now' }).click()
    await page.getByRole('dialog', { name: 'Update to 1.2.0?' }).getByRole('button', { name: 'Update to 1.2.0' }).click()
    const brokenStarted = Date.now()
    const failure = page.getByTestId('run-failure')
    await failure.waitFor({ timeout: 60_000 })
    const rollbackMs = Date.now() - brokenStarted
    expect(await failure.getByTestId('failure-output').textContent()).toContain('crashed at start')
    expect(await page.getByTestId('rollback-notice').textContent()).toContain('1.1.0 was restored and runs again')
    expect(await stepStates(page.getByTestId('update-run'))).toContain('rollback:done')
    await page.getByRole('heading', { name: 'Version 1.2.0 failed to install' }).waitFor()
    expect(await page.getByTestId('current-version').textContent()).toBe('1.1.0')
    await screenshot(page, `62-demo-${as}-rolled-back`)

    // 1.1.0 serves again with the data as it was before 1.2.0 touched it; what 1.2.0 made of it is kept aside.
    expect(await samplePage(sample, printed.sampleUrl)).toEqual({ version: '1.1.0', visits: updated.visits + 1 })
    expect(JSON.parse(await readFile(path.join(printed.dir, 'sample', 'data', 'counter.json'), 'utf8'))).toEqual({ visits: updated.visits + 1 })
    const aside = (await readdir(path.join(printed.dir, 'state', 'sample', 'rolled-back'), { recursive: true })).filter((f) => f.endsWith('counter.json'))
    expect(aside).toHaveLength(1)
    expect(JSON.parse(await readFile(path.join(printed.dir, 'state', 'sample', 'rolled-back', aside[0]!), 'utf8'))).toEqual({ format: 2, counters: { visits: updated.visits } })

    console.log(`npm run demo as ${as}: update 1.0.0 → 1.1.0 ${(updateMs / 1000).toFixed(1)} s, 1.2.0 failed and rolled back ${(rollbackMs / 1000).toFixed(1)} s (from the confirming click to the result on the page)`)
    await context.close()
  }, 180_000)

  test('Ctrl-C stops every process of the demo', async () => {
    onTestFailed(async () => console.log(await diagnostics(printed.dir, output)))
    const server = await readPidFile(path.join(printed.dir, 'upkeep-data', 'server.pid'))
    const app = await readPidFile(path.join(printed.dir, 'state', 'sample', 'app.pid'))
    expect(server && app).toBeTruthy()
    expect((await processesOf(printed.dir)).length).toBeGreaterThanOrEqual(2)
    process.kill(-demo.pid!, 'SIGINT')
    // npm itself ends by the SIGINT it got (as in a terminal); the demo says it stopped everything.
    expect(await exited).toMatchObject({ signal: 'SIGINT' })
    expect(output).toMatch(/Ctrl-C: stopping Upkeep and the sample app…\nStopped \d+ process\(es\)\./)
    expect(output).toContain(`The demo's files stay in ${printed.dir}; delete them with: rm -rf ${printed.dir}`)
    expect(await processesOf(printed.dir)).toEqual([])
    expect(await processGroup(demo.pid!)).toEqual([])
    expect(await isAnswering(printed.url)).toBe(false)
    expect(await isAnswering(printed.sampleUrl)).toBe(false)
  }, 60_000)
})
