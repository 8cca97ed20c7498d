import net from 'node:net'
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import { createApp } from '../../server/app'
import type { HttpServerHandle } from '../../server/http-server'
import { createAuth, PASSWORD_CHECKS } from '../../server/services/auth'
import { createFairQueue, type FairQueue } from '../../server/services/fair-queue'
import { verifyPassword } from '../../server/services/password'
import { silentLogger } from '../../updater/shared/log'
import { sessionCookieOf, TEST_ADMIN_PASSWORD } from '../support/auth'
import { fakeClock } from '../support/clock'
import { httpRequest, serveApp, waitFor } from '../support/http-request'
import { createTestApp, type TestApp } from '../support/test-app'

// Logins against a real server on a port, fired concurrently as a guesser would. What reaches
// scrypt is counted in the password check itself (a seam of createAuth), never inferred from time.
// A gate can hold checks inside scrypt's slot, to look at the queue while they are running.

const clock = fakeClock()
let t: TestApp
let server: HttpServerHandle
let checks: FairQueue
/** Every password that reached the check, in order. */
let checked: string[]
let gate: ReturnType<typeof createGate>
/** Most wrong passwords of one client being checked at once. */
let mostAtOnce: number

function createGate() {
  let isOpen = false
  let hold: (password: string) => boolean = () => false
  const waiting: (() => void)[] = []
  let held = 0
  return {
    holdWhen(fn: (password: string) => boolean) {
      hold = fn
    },
    async pass(password: string) {
      if (isOpen || !hold(password)) return
      held++
      await new Promise<void>((r) => waiting.push(r))
    },
    /** Checks held so far (released or not). */
    get held() {
      return held
    },
    /** Lets the check held longest go on. */
    releaseOne: () => waiting.shift()?.(),
    open() {
      isOpen = true
      for (const r of waiting.splice(0)) r()
    },
  }
}

beforeEach(async () => {
  clock.set('2026-11-23T10:00:00.000Z')
  t = await createTestApp({ clock, env: { UPDATE_REPO: 'acme/widget', UPDATE_CHECK_DISABLED: 'true' } })
  checked = []
  gate = createGate()
  mostAtOnce = 0
  checks = createFairQueue(PASSWORD_CHECKS)
  const running = new Map<string, number>()
  const auth = createAuth({
    passwordFile: t.services.paths.adminPassword,
    sessionsFile: t.services.paths.sessions,
    clock,
    log: silentLogger(),
    checks,
    async verify(password, hash) {
      checked.push(password)
      const client = password.split(':')[0]!
      running.set(client, (running.get(client) ?? 0) + 1)
      mostAtOnce = Math.max(mostAtOnce, running.get(client)!)
      try {
        await gate.pass(password)
        return await verifyPassword(password, hash)
      } finally {
        running.set(client, running.get(client)! - 1)
      }
    },
  })
  const app = createApp({ config: t.config, log: silentLogger(), build: { version: '1.4.0', commit: 'abc1234' }, startedAt: new Date(), ...t.services, auth })
  server = await serveApp(app)
})
afterEach(async () => {
  gate.open()
  await server.close()
  await t.cleanup()
})

/** A login from `client` (a proxy on this machine names it in X-Forwarded-For). */
function login(client: string, password: string, signal?: AbortSignal): Promise<Response> {
  return fetch(`${server.url}/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-forwarded-for': client },
    body: JSON.stringify({ password }),
    signal,
  })
}

const tally = (statuses: number[]) => statuses.reduce<Record<number, number>>((acc, s) => ({ ...acc, [s]: (acc[s] ?? 0) + 1 }), {})

describe('must show 3: concurrent logins', () => {
  test('30 concurrent wrong passwords from one client: 5 reach scrypt (401), 25 are refused at once (429)', async () => {
    const statuses = (await Promise.all(Array.from({ length: 30 }, (_, i) => login('203.0.113.5', `a:wrong-${i}`)))).map((r) => r.status)
    expect(tally(statuses)).toEqual({ 401: 5, 429: 25 })
    expect(checked).toHaveLength(5)
    // One client's checks run one after another: its flood never holds more than one slot.
    expect(mostAtOnce).toBe(1)
  })

  test('199 wrong passwords and then the right one, in a burst: the right one is refused too', async () => {
    gate.holdWhen((p) => p.startsWith('a:wrong'))
    const wrong = Array.from({ length: 199 }, (_, i) => login('203.0.113.5', `a:wrong-${i}`).then((r) => r.status))
    const answered: number[] = []
    for (const w of wrong) void w.then((s) => answered.push(s))
    // 5 attempts hold the client's whole budget while they wait for scrypt; the rest are told so.
    await waitFor(() => answered.length >= 194, '194 answers')
    expect(tally(answered)).toEqual({ 429: 194 })
    const right = await login('203.0.113.5', TEST_ADMIN_PASSWORD)
    expect(right.status).toBe(429)
    expect(sessionCookieOf(right)).toBeUndefined()
    gate.open()
    expect(tally(await Promise.all(wrong))).toEqual({ 401: 5, 429: 194 })
    expect(checked.filter((p) => p === TEST_ADMIN_PASSWORD)).toEqual([])
    expect(checked).toHaveLength(5)
  })

  test("one client's flood does not hold up another client's login, nor other routes", async () => {
    gate.holdWhen((p) => p.startsWith('a:'))
    const flood = Array.from({ length: 30 }, (_, i) => login('203.0.113.5', `a:wrong-${i}`).then((r) => r.status))
    await waitFor(() => gate.held === 1 && checks.stats().waiting === 4, "the flood's first check running, four waiting")
    // The other client comes after the flood's five, and is checked next all the same.
    const other = login('198.51.100.7', TEST_ADMIN_PASSWORD)
    await waitFor(() => checks.stats().waiting === 5, "the other client's check to wait")
    gate.releaseOne()
    const res = await other
    expect(res.status).toBe(200)
    expect(checked.slice(0, 2)).toEqual([expect.stringMatching(/^a:wrong-/), TEST_ADMIN_PASSWORD])
    // Other routes do not wait for password checks at all: the flood's second one is held now.
    await waitFor(() => gate.held === 2, "the flood's second check to be running")
    const cookie = sessionCookieOf(res)!
    expect((await fetch(`${server.url}/api/settings`, { headers: { cookie } })).status).toBe(200)
    expect((await fetch(`${server.url}/api/health`)).status).toBe(200)
    gate.open()
    expect(tally(await Promise.all(flood))).toEqual({ 401: 5, 429: 25 })
  })

  test('when a check runs and 16 wait, the next client is told 503 with Retry-After, and keeps its budget', async () => {
    gate.holdWhen((p) => p.includes('wrong'))
    const first = Array.from({ length: 17 }, (_, i) => login(`203.0.113.${i + 1}`, `c${i}:wrong`).then((r) => r.status))
    await waitFor(() => checks.stats().running === 1 && checks.stats().waiting === 16, 'a full queue')
    const busy = await login('198.51.100.7', 'late:wrong')
    expect(busy.status).toBe(503)
    expect(busy.headers.get('retry-after')).toBe('2')
    expect(await busy.json()).toMatchObject({ error: { code: 'BUSY' } })
    gate.open()
    expect(tally(await Promise.all(first))).toEqual({ 401: 17 })
    // The refused attempt was not counted: five wrong ones still get checked, then the limit.
    const after: number[] = []
    for (let i = 0; i < 6; i++) after.push((await login('198.51.100.7', `late:wrong-${i}`)).status)
    expect(after).toEqual([401, 401, 401, 401, 401, 429])
  })

  test('checks still waiting when their clients disconnect are dropped, never run', async () => {
    gate.holdWhen(() => true)
    const runningOne = login('203.0.113.1', 'x1:wrong')
    await waitFor(() => checks.stats().running === 1, 'a running check')
    const aborts = Array.from({ length: 5 }, () => new AbortController())
    const gone = aborts.map((a, i) => login(`198.51.100.${i + 1}`, `y${i}:wrong`, a.signal).catch((err: Error) => err.name))
    await waitFor(() => checks.stats().waiting === 5, 'five waiting checks')
    for (const a of aborts) a.abort()
    expect(await Promise.all(gone)).toEqual(Array(5).fill('AbortError'))
    await waitFor(() => checks.stats().waiting === 0, 'the waiting checks to be dropped')
    gate.open()
    expect((await runningOne).status).toBe(401)
    await waitFor(() => checks.stats().running === 0, 'the queue to be idle')
    expect(checked).toEqual(['x1:wrong'])
  })
})

describe('must show 3: body limits', () => {
  test('a login announcing 100 MB is answered 413 before its body is sent, and the connection closed', async () => {
    const socket = net.connect(server.port!, '127.0.0.1')
    let received = ''
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()))
    socket.on('data', (d) => (received += d))
    socket.on('error', () => {})
    socket.write(['POST /api/auth/login HTTP/1.1', 'Host: 127.0.0.1', 'Content-Type: application/json', `Content-Length: ${100 * 1024 * 1024}`, '', '{"password":"'].join('\r\n'))
    // Nothing more of the body is ever sent: an answer can only come from the headers.
    await waitFor(() => received.includes('\r\n\r\n'), 'an answer to the headers', 15_000)
    expect(received).toMatch(/^HTTP\/1\.1 413 /)
    expect(received.toLowerCase()).toContain('connection: close')
    expect(received).toContain('"code":"PAYLOAD_TOO_LARGE"')
    await closed
    expect(checked).toEqual([])
  })

  test('a chunked login over 4 KiB is 413; one under it is checked', async () => {
    const big = JSON.stringify({ password: `a:${'x'.repeat(5000)}` })
    const chunked = (body: string) => httpRequest(`${server.url}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' }, body })
    const res = await chunked(big)
    expect(res.status).toBe(413)
    expect(JSON.parse(res.body)).toMatchObject({ error: { code: 'PAYLOAD_TOO_LARGE', message: 'the request body is larger than 4096 bytes' } })
    expect((await chunked(JSON.stringify({ password: 'a:short' }))).status).toBe(401)
    expect(checked).toEqual(['a:short'])
  })

  test('other JSON routes take up to 64 KiB', async () => {
    const cookie = sessionCookieOf(await login('203.0.113.9', TEST_ADMIN_PASSWORD))!
    const put = (size: number) =>
      fetch(`${server.url}/api/settings`, { method: 'PUT', headers: { cookie, 'content-type': 'application/json' }, body: JSON.stringify({ updateRepo: 'x'.repeat(size) }) })
    expect((await put(70 * 1024)).status).toBe(413)
    // Under the limit the body reaches the route, which judges it.
    expect(await (await put(60 * 1024)).json()).toMatchObject({ error: { code: 'BAD_REPO' } })
  })
})
