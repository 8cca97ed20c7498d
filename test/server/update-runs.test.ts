import { mkdir, mkdtemp, readFile, rm, appendFile, writeFile, access } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import type { AppsService } from '../../server/services/apps'
import { upkeepDefinition } from '../../updater/shared/apps/builtin'
import { createAppPaths, createManagerPaths } from '../../updater/shared/paths'
import { updateRunRoutes } from '../../server/routes/update-runs'
import { createUpdateLauncher } from '../../server/services/update-launcher'
import { parseConfig, type Config } from '../../updater/shared/config'
import { silentLogger } from '../../updater/shared/log'
import { parseUpdateRequest } from '../../updater/shared/request'
import type { Journal } from '../../updater/shared/journal'
import { processStartTime } from '../../updater/shared/pidfile'

let dir: string
let config: ReturnType<typeof parseConfig>
/** Upkeep's own app, as the server's apps service hands it out. */
const appsOf = (c: Config) => ({ get: async () => ({ paths: createAppPaths(upkeepDefinition(c), createManagerPaths(c)) }) }) as unknown as AppsService

const launched: string[] = []
const launcher = { launch: (c: 'apply-request' | 'recover') => void launched.push(c) }

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'upkeep-runs-'))
  config = parseConfig({ APP_DIR: dir }, { appDir: dir, cwd: dir })
  await mkdir(config.dataDir, { recursive: true })
  launched.length = 0
})
afterEach(() => rm(dir, { recursive: true, force: true }))

const post = (body: unknown, raw?: string) =>
  updateRunRoutes({ apps: appsOf(config), log: silentLogger(), updateLauncher: launcher }).request('/apply', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: raw ?? JSON.stringify(body),
  })

function journal(over: Partial<Journal> = {}): Journal {
  const now = new Date().toISOString()
  return {
    schema: 1, updateId: '20261123T100000Z-0000abcd', kind: 'update', trigger: 'request', pid: process.pid,
    startedAt: now, updatedAt: now, from: { version: '1.0.0' }, to: { version: '1.1.0', tag: 'v1.1.0' },
    options: { backup: true, force: false }, state: 'running', steps: [], recoveries: 0, ...over,
  }
}

describe('POST /api/updates/apply', () => {
  test('writes a valid request atomically, launches the updater and answers 202 with the update id', async () => {
    const res = await post({ version: '1.1.0', backup: true })
    expect(res.status).toBe(202)
    const { updateId } = (await res.json()) as { updateId: string }
    const request = parseUpdateRequest(JSON.parse(await readFile(path.join(config.dataDir, 'update-request.json'), 'utf8')))
    expect(request).toMatchObject({ updateId, version: 'v1.1.0', backup: true })
    expect(launched).toEqual(['apply-request'])
  })

  test('without a version, asks for the latest release the server knows of', async () => {
    await writeFile(path.join(config.dataDir, 'release-cache.json'), JSON.stringify({ latest: { tag: 'v2.0.0' }, releases: [] }))
    expect((await post({})).status).toBe(202)
    const request = JSON.parse(await readFile(path.join(config.dataDir, 'update-request.json'), 'utf8'))
    expect(request).toMatchObject({ version: 'v2.0.0', backup: true })
  })

  test('a second click while the first request is pending is 409', async () => {
    expect((await post({})).status).toBe(202)
    const second = await post({})
    expect(second.status).toBe(409)
    expect(await second.json()).toMatchObject({ error: { code: 'UPDATE_RUNNING' } })
    expect(launched).toEqual(['apply-request'])
  })

  test('five clicks at once: exactly one request is written, the others are 409', async () => {
    const statuses = (await Promise.all(Array.from({ length: 5 }, () => post({ version: '1.1.0' })))).map((r) => r.status)
    expect(statuses.sort()).toEqual([202, 409, 409, 409, 409])
    expect(launched).toEqual(['apply-request'])
  })

  test('409 while a live updater holds the lock', async () => {
    await writeFile(path.join(config.dataDir, 'update-journal.json'), JSON.stringify(journal()))
    await mkdir(path.join(config.dataDir, 'update.lock'))
    await writeFile(path.join(config.dataDir, 'update.lock.owner.json'), JSON.stringify({ pid: process.pid, start: processStartTime(process.pid) }))
    const res = await post({})
    expect(res.status).toBe(409)
    expect(await res.json()).toMatchObject({ error: { code: 'UPDATE_RUNNING', message: 'update 20261123T100000Z-0000abcd is running' } })
  })

  test('an update whose updater died does not block a new request (the updater recovers it first)', async () => {
    await writeFile(path.join(config.dataDir, 'update-journal.json'), JSON.stringify(journal({ pid: 999999 })))
    await mkdir(path.join(config.dataDir, 'update.lock'))
    await writeFile(path.join(config.dataDir, 'update.lock.owner.json'), JSON.stringify({ pid: 999999 }))
    expect((await post({})).status).toBe(202)
  })

  test.each([
    [{ version: 'v1.1.0; touch /tmp/pwned' }, 400, 'BAD_VERSION'],
    [{ version: '--upload-pack=evil' }, 400, 'BAD_VERSION'],
    [{ version: 7 }, 400, 'BAD_VERSION'],
    [{ backup: 'yes' }, 400, 'BAD_REQUEST'],
    [{ command: 'rm -rf /' }, 400, 'BAD_REQUEST'],
    [[1, 2], 400, 'BAD_REQUEST'],
  ])('rejects %j with %i %s and writes nothing', async (body, status, code) => {
    const res = await post(body)
    expect(res.status).toBe(status)
    expect(await res.json()).toMatchObject({ error: { code } })
    await expect(access(path.join(config.dataDir, 'update-request.json'))).rejects.toThrow()
    expect(launched).toEqual([])
  })

  test.each([
    ['an option in place of a tag', 'v1.0.0 --upload-pack=x'],
    ['not a tag at all', 'latest'],
    ['not a string', 42],
  ])('without a version, a release cache whose latest is %s is refused, nothing is requested', async (_what, tag) => {
    await writeFile(path.join(config.dataDir, 'release-cache.json'), JSON.stringify({ latest: { tag }, releases: [] }))
    // No body at all, as `curl -X POST` sends it.
    for (const res of [await post(undefined, ''), await post({})]) {
      expect(res.status).toBe(409)
      expect(await res.json()).toEqual({
        error: { code: 'NO_RELEASE', message: expect.stringMatching(/^the release cache names .* as the latest release, which is not a release tag; the cache is damaged$/), hint: expect.stringContaining('Check for updates') },
      })
    }
    await expect(access(path.join(config.dataDir, 'update-request.json'))).rejects.toThrow()
    expect(launched).toEqual([])
  })

  test('a version longer than 100 characters is refused whole, never cut into another tag', async () => {
    const long = `1.0.0-${'a'.repeat(95)}`
    for (const version of [long, `${long.slice(0, 100)} --upload-pack=x`]) {
      const res = await post({ version })
      expect(res.status).toBe(400)
      expect(await res.json()).toMatchObject({ error: { code: 'BAD_VERSION', message: 'version is longer than 100 characters' } })
    }
    await expect(access(path.join(config.dataDir, 'update-request.json'))).rejects.toThrow()
    // 100 characters is still a version.
    expect((await post({ version: long.slice(0, 100) })).status).toBe(202)
  })

  test('rejects a body that is not JSON', async () => {
    const res = await post(undefined, '{nope')
    expect(res.status).toBe(400)
  })
})

describe('GET /api/updates/history', () => {
  test('newest first, limited', async () => {
    const line = (id: string, status: string) => JSON.stringify({ id, status, kind: 'update', from: { version: '1.0.0' }, to: { version: '1.1.0', tag: 'v1.1.0' }, steps: [] })
    await writeFile(path.join(config.dataDir, 'update-history.jsonl'), [line('a', 'failed'), line('b', 'complete'), '{torn'].join('\n'))
    const res = await updateRunRoutes({ apps: appsOf(config), log: silentLogger() }).request('/history?limit=1')
    expect(await res.json()).toMatchObject({ entries: [{ id: 'b', status: 'complete' }] })
    const all = await updateRunRoutes({ apps: appsOf(config), log: silentLogger() }).request('/history')
    expect(((await all.json()) as { entries: unknown[] }).entries).toHaveLength(2)
  })
})

describe('GET /api/updates/events (SSE)', () => {
  const event = (id: number, type: string, extra: object = {}) => JSON.stringify({ id, updateId: 'u', at: '2026-11-23T10:00:00Z', type, ...extra }) + '\n'

  test('streams events after Last-Event-ID, then new ones as they are appended, and ends when the server drains', async () => {
    const status = path.join(config.dataDir, 'update-status.jsonl')
    await writeFile(status, event(1, 'update-started') + event(2, 'step-started', { step: 'preflight' }) + event(3, 'step-finished', { step: 'preflight', durationMs: 5 }))
    const shutdown = new AbortController()
    const app = updateRunRoutes({ apps: appsOf(config), log: silentLogger(), shutdown: shutdown.signal, pollMs: 20 })
    const res = await app.request('/events', { headers: { 'Last-Event-ID': '1' } })
    expect(res.headers.get('content-type')).toContain('text/event-stream')
    const reader = res.body!.getReader()
    const decoder = new TextDecoder()
    let text = ''
    const readUntil = async (needle: string) => {
      while (!text.includes(needle)) {
        const { value, done } = await reader.read()
        if (done) throw new Error(`stream ended before ${needle}: ${text}`)
        text += decoder.decode(value)
      }
    }
    await readUntil('id: 3')
    expect(text).toContain('retry: 1000')
    expect(text).not.toContain('id: 1\n')
    expect(text).toContain('"type":"step-started"')
    await appendFile(status, event(4, 'finished', { status: 'complete', durationMs: 10 }))
    await readUntil('id: 4')
    expect(text).toContain('"status":"complete"')
    shutdown.abort()
    for (;;) {
      const { done } = await reader.read()
      if (done) break
    }
  })
})

describe('update launcher (process mode)', () => {
  test('starts the updater detached with the command and the pinned paths', async () => {
    const script = path.join(dir, 'fake-upkeep.mjs')
    const out = path.join(dir, 'launched.json')
    await writeFile(script, `import { writeFileSync } from 'node:fs'\nwriteFileSync(${JSON.stringify(out)}, JSON.stringify({ args: process.argv.slice(2), appDir: process.env.APP_DIR, pgid: process.pid }))\n`)
    createUpdateLauncher({ config: { ...config, serviceManager: 'process' }, log: silentLogger(), updaterArgv: [process.execPath, script] }).launch('apply-request')
    const deadline = Date.now() + 5000
    while (Date.now() < deadline && !(await access(out).then(() => true, () => false))) await new Promise((r) => setTimeout(r, 20))
    expect(JSON.parse(await readFile(out, 'utf8'))).toMatchObject({ args: ['apply-request'], appDir: dir })
  })

  test('does nothing under systemd (the path unit starts the updater)', () => {
    const l = createUpdateLauncher({ config: { ...config, serviceManager: 'systemd' }, log: silentLogger(), updaterArgv: ['/nonexistent'] })
    expect(() => l.launch('apply-request')).not.toThrow()
  })
})
