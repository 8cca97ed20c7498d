import { writeFile, mkdir } from 'node:fs/promises'
import path from 'node:path'
import { hashPassword } from '../../server/services/password'

// Logging in, for tests of anything behind /api (everything but /api/health needs a session).

export const TEST_ADMIN_PASSWORD = 'test-admin-password'
export const SESSION_COOKIE = 'upkeep_session'

/** A running server's base URL (`http://127.0.0.1:PORT`), or anything with Hono's `request()`. */
export type LoginTarget = string | { request(input: string, init?: RequestInit): Response | Promise<Response> }

function send(target: LoginTarget, pathname: string, init: RequestInit): Promise<Response> {
  return Promise.resolve(typeof target === 'string' ? fetch(new URL(pathname, target), init) : target.request(pathname, init))
}

/**
 * Logs in and returns the value for a `Cookie` header (`upkeep_session=…`); throws with the
 * server's answer when the login fails.
 * @example const cookie = await login(`http://127.0.0.1:${port}`); await fetch(url, { headers: { cookie } })
 * @example const cookie = await login(app); await app.request('/api/updates', { headers: { cookie } })
 */
export async function login(target: LoginTarget, password = TEST_ADMIN_PASSWORD): Promise<string> {
  const res = await send(target, '/api/auth/login', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ password }),
  })
  if (res.status !== 200) throw new Error(`login failed: ${res.status} ${await res.text()}`)
  const cookie = sessionCookieOf(res)
  if (!cookie) throw new Error('login answered 200 without a session cookie')
  return cookie
}

/** `upkeep_session=…` from a response's Set-Cookie, or undefined. */
export function sessionCookieOf(res: Response): string | undefined {
  for (const line of res.headers.getSetCookie()) {
    const pair = line.split(';')[0]!.trim()
    if (pair.startsWith(`${SESSION_COOKIE}=`) && pair.length > SESSION_COOKIE.length + 1) return pair
  }
  return undefined
}

/** Headers for an authenticated JSON request (a same-origin one: no foreign Origin). */
export function adminHeaders(cookie: string, extra: Record<string, string> = {}): Record<string, string> {
  return { cookie, 'content-type': 'application/json', ...extra }
}

/** Environment for a server process started in a test: its first start takes this password. */
export function adminEnv(password = TEST_ADMIN_PASSWORD): { UPKEEP_ADMIN_PASSWORD: string } {
  return { UPKEEP_ADMIN_PASSWORD: password }
}

let testHash: Promise<string> | undefined

/**
 * Writes `data/admin-password.json` for `password` unless the data dir has one already, as a
 * server's first start would (the hash of TEST_ADMIN_PASSWORD is computed once per test file).
 */
export async function seedAdminPassword(dataDir: string, password = TEST_ADMIN_PASSWORD): Promise<void> {
  const hash = password === TEST_ADMIN_PASSWORD ? await (testHash ??= hashPassword(password)) : await hashPassword(password)
  await mkdir(dataDir, { recursive: true })
  const record = JSON.stringify({ hash, changedAt: new Date().toISOString() }) + '\n'
  await writeFile(path.join(dataDir, 'admin-password.json'), record, { mode: 0o600, flag: 'wx' }).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err
  })
}
