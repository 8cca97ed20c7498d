import { createHmac, timingSafeEqual } from 'node:crypto'
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import type { UpkeepEvent } from '../../../server/services/auto-update/events'
import { systemSchedulerClock } from '../../../server/services/auto-update/scheduler'
import { createAutoUpdate, type AutoUpdateService } from '../../../server/services/auto-update/service'
import { createServerServices, type ServerServices } from '../../../server/services/create-services'
import { parseConfig } from '../../../updater/shared/config'
import type { HistoryEntry } from '../../../updater/shared/history'
import { writeInstalled } from '../../../updater/shared/installed'
import { silentLogger } from '../../../updater/shared/log'
import { createFixture, createOrigin, FIXTURE_APP, type Fixture } from '../../support/fixture-app'
import { git } from '../../support/git-fixtures'
import { repoRoot } from '../../support/paths'
import { freePort } from '../../support/run'

// Must show 3 and 4 for real: the server's automatic updates (in this process: the scheduler,
// the notifier and the watch of the app's files, as server/main.ts starts them) against the
// fixture app, updated by the real `upkeep apply-request` (what upkeep-updater.service runs).
// Webhook receivers are real HTTP servers on local ports.

/** Waits until `check` holds, polling; fails with `what` after `timeoutMs`. */
async function until<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await check()
    if (v) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

interface Delivery {
  headers: IncomingHttpHeaders
  body: string
  at: number
}

interface Receiver {
  url: string
  /** Every request, in the order they came. */
  got: Delivery[]
  /** The requests it answered 2xx. */
  answered: Delivery[]
  close(): Promise<void>
}

/** A receiver that answers `answer(n)` (n: the how-manyth request), once `gate` has resolved. */
async function receiver(answer: (n: number) => number, gate: Promise<unknown> = Promise.resolve()): Promise<Receiver> {
  const got: Delivery[] = []
  const answered: Delivery[] = []
  const server: Server = createServer((req, res) => {
    let body = ''
    req.on('data', (c: Buffer) => (body += c.toString('utf8')))
    req.on('end', () => {
      const d = { headers: req.headers, body, at: Date.now() }
      got.push(d)
      const status = answer(got.length)
      void gate.then(() => {
        // A request the notifier gave up on meanwhile is not an answered one.
        if (res.destroyed || req.socket.destroyed) return
        if (status < 300) answered.push(d)
        res.writeHead(status).end(status < 300 ? 'ok' : 'nope')
      })
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    got,
    answered,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections()
        server.close(() => r())
      }),
  }
}

const SECRET = 'e2e webhook secret, long enough'

/** What the README tells a receiver to do: HMAC-SHA256 of `<timestamp>.<raw body>`, compared in constant time. */
function verify(d: Delivery): boolean {
  const ts = String(d.headers['x-upkeep-timestamp'])
  const want = Buffer.from('sha256=' + createHmac('sha256', SECRET).update(`${ts}.${d.body}`).digest('hex'))
  const got = Buffer.from(String(d.headers['x-upkeep-signature'] ?? ''))
  return got.length === want.length && timingSafeEqual(got, want) && Math.abs(Date.now() / 1000 - Number(ts)) < 300
}

const events = (ds: Delivery[]) => ds.map((d) => JSON.parse(d.body) as UpkeepEvent)
/** The events up to and including the first `update-completed`. */
const throughCompleted = (es: UpkeepEvent[]) => es.slice(0, es.findIndex((e) => e.event === 'update-completed') + 1)

describe('automatic updates of a real app, with webhooks', () => {
  let root: string
  let f: Fixture
  let s: ServerServices
  let auto: AutoUpdateService
  let good: Receiver
  let slow: Receiver
  let openSlow: () => void
  let flaky: Receiver
  let unreachable: string

  beforeAll(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'upkeep-auto-e2e-'))
    // The server (here: this root process) lists the origin's tags with its own HOME's git config;
    // the origin is a local path of nobody's, which git trusts only when told to.
    await mkdir(path.join(root, 'home'))
    await writeFile(path.join(root, 'home', '.gitconfig'), '[safe]\n\tdirectory = *\n')
    process.env.HOME = path.join(root, 'home')
    f = await createFixture(await createOrigin(root, { crashLater: true }))
    // What runs, as `upkeep app add` records it: a policy measures releases against it.
    await writeInstalled(f.paths.installed, { version: '1.0.0', tag: 'v1.0.0', at: new Date().toISOString() })
    // v1.5.0 must outlive the test when it is installed (no soak here: that is soak.test.ts's).
    await f.define((d) => ((d.run as { command: { env: Record<string, string> } }).command.env.FIXTURE_CRASH_AFTER_MS = '600000'))
    good = await receiver(() => 202)
    // Answers nothing until the test says so: every try of the notifier (1 s here) times out.
    slow = await receiver(() => 200, new Promise<void>((r) => (openSlow = r)))
    flaky = await receiver((n) => (n <= 2 ? 500 : 202))
    unreachable = `http://127.0.0.1:${await freePort()}/hook`
    const config = parseConfig({ ...f.env, APP_DIR: repoRoot, UPDATE_CHECK_DISABLED: 'true', UPKEEP_SERVICE_MANAGER: 'process' }, { appDir: repoRoot, cwd: repoRoot })
    s = await createServerServices({ config, log: silentLogger(), build: { version: '1.0.0', commit: 'abc' } })
    // What server/main.ts starts, with quicker webhook retries (the real ones wait 1 s, 5 s, 30 s, 2 min, 10 min).
    auto = createAutoUpdate({
      apps: s.apps,
      settings: s.settings,
      requester: s.requester,
      clock: systemSchedulerClock,
      log: silentLogger(),
      dataDir: config.dataDir,
      retryDelaysMs: [300, 600, 1200, 2400, 4800, 9600, 19_200],
      attemptTimeoutMs: 1000,
      watchMs: 200,
    })
  }, 120_000)

  afterAll(async () => {
    await auto?.stop()
    for (const r of [good, slow, flaky]) await r?.close()
    await f?.stop()
    await rm(root, { recursive: true, force: true })
  })

  const history = async () => JSON.parse((await f.upkeep(['history', '--json'])).stdout) as HistoryEntry[]
  const requested = async () => JSON.parse(await readFile(f.paths.request, 'utf8').catch(() => 'null')) as { updateId: string; version: string; trigger?: string } | null

  test('must show 3: the receiver gets the events of an automatic update in order, each signed; slow, failing and unreachable ones hold nothing up and are retried', async () => {
    await auto.save(FIXTURE_APP, {
      // Releases listed by git have no date: a minimum age of 0 lets them install.
      policy: { mode: 'minor', minReleaseAgeHours: 0, skip: ['1.2.0', '1.3.0', '1.4.0', '1.5.0'] },
      webhooks: [
        { url: good.url, preset: 'json', secret: SECRET },
        { url: slow.url, preset: 'json' },
        { url: flaky.url, preset: 'json' },
        { url: unreachable, preset: 'json' },
      ],
    })
    await auto.start()

    // The scheduler ticked at start: v1.1.0 is asked for like "Update now" does it, as the scheduler's.
    const request = await until('the request', requested)
    expect(request).toMatchObject({ version: 'v1.1.0', trigger: 'auto' })
    const r = await f.upkeep(['apply-request'])
    expect(r.code, r.stdout + r.stderr).toBe(0)
    const [entry] = await history()
    expect(entry).toMatchObject({ id: request!.updateId, trigger: 'auto', status: 'complete', to: { version: '1.1.0' } })
    expect(await f.health()).toEqual({ status: 200, version: '1.1.0' })

    // In order, each signed, each once.
    await until('update-completed at the receiver', () => events(good.got).some((e) => e.event === 'update-completed'))
    // Up to the end of this update (the scheduler's next minute may announce another release after it).
    const seen = throughCompleted(events(good.got))
    expect(seen.map((e) => [e.event, e.version.to, e.trigger ?? null])).toEqual([
      ['update-available', '1.1.0', null],
      ['update-started', '1.1.0', 'auto'],
      ['update-completed', '1.1.0', 'auto'],
    ])
    expect(seen[1]!.updateId).toBe(request!.updateId)
    expect(good.got.every(verify)).toBe(true)
    expect(good.got.slice(0, seen.length).map((d) => d.headers['x-upkeep-delivery'])).toEqual(seen.map((e) => e.id))

    // The slow receiver has not answered once, and the update did not wait for it; it was tried again and again.
    expect(slow.answered).toEqual([])
    await until('retries of the slow receiver', () => slow.got.length >= 2)
    expect(events(slow.got).every((e) => e.event === 'update-available')).toBe(true)
    // Once it answers, it gets everything, in order.
    openSlow()
    await until('the slow receiver to catch up', () => events(slow.answered).some((e) => e.event === 'update-completed'))
    expect(throughCompleted(events(slow.answered)).map((e) => e.event)).toEqual(['update-available', 'update-started', 'update-completed'])
    // The failing receiver's 500s were retried, and everything after arrived in order.
    await until('the flaky receiver to catch up', () => events(flaky.answered).some((e) => e.event === 'update-completed'))
    expect(throughCompleted(events(flaky.got)).map((e) => e.event)).toEqual(['update-available', 'update-available', 'update-available', 'update-started', 'update-completed'])
    // The unreachable one is retried, its events kept in the outbox (a server restart would resume them).
    const outbox = path.join(f.root, 'upkeep-data', 'notify-outbox.json')
    await until('a retried event in the outbox', async () => (JSON.parse(await readFile(outbox, 'utf8')) as { attempts: number }[]).some((i) => i.attempts >= 2))
    expect(auto.notifier.status().find((e) => e.url === `${new URL(unreachable).origin}/…`)).toMatchObject({ lastError: 'connection refused' })
  }, 180_000)

  test('must show 4: a release that was rolled back is not tried again automatically; a newer one is', async () => {
    // Let 1.4.0 (which crashes at start) install itself.
    await auto.save(FIXTURE_APP, { policy: { mode: 'minor', minReleaseAgeHours: 0, skip: ['1.2.0', '1.3.0', '1.5.0'] } })
    const request = await until('the request for 1.4.0', async () => {
      await auto.tick()
      const r = await requested()
      return r?.version === 'v1.4.0' ? r : undefined
    })
    const r = await f.upkeep(['apply-request'])
    expect(r.code).toBe(1)
    expect((await history())[0]).toMatchObject({ id: request.updateId, trigger: 'auto', status: 'rolled_back', to: { version: '1.4.0' } })
    await until('update-rolled-back at the receiver', () => events(good.got).some((e) => e.event === 'update-rolled-back'))
    // (Announcements of other releases may come in between: only this update's events are in order.)
    expect(events(good.got).filter((e) => e.updateId === request.updateId).map((e) => [e.event, e.version.to, e.trigger])).toEqual([
      ['update-started', '1.4.0', 'auto'],
      ['update-rolled-back', '1.4.0', 'auto'],
    ])

    // Not again: ticks come and go, no request, and the view says why.
    for (let i = 0; i < 3; i++) await auto.tick()
    expect(await requested()).toBeNull()
    const v = await auto.view(FIXTURE_APP)
    expect(v.decision.passedOver).toEqual(expect.arrayContaining([{ version: '1.4.0', reason: { code: 'rolled-back-before', text: 'rolled back before' } }]))

    // A newer release is published (a new tag on the origin): it installs itself.
    const work = path.join(root, 'origin-work')
    await writeFile(path.join(work, 'CHANGES.txt'), 'v1.6.0\n')
    git(work, ['commit', '-qam', 'release v1.6.0'])
    git(work, ['tag', '-a', 'v1.6.0', '-m', 'v1.6.0'])
    git(work, ['push', '-q', path.join(root, 'origin.git'), 'v1.6.0'])
    await (await s.apps.get(FIXTURE_APP)).updates.check()
    const next = await until('the request for 1.6.0', async () => {
      await auto.tick()
      return (await requested()) ?? undefined
    })
    expect(next).toMatchObject({ version: 'v1.6.0', trigger: 'auto' })
    expect((await f.upkeep(['apply-request'])).code).toBe(0)
    expect(await f.health()).toEqual({ status: 200, version: '1.6.0' })
  }, 180_000)
})
