import { getEventListeners } from 'node:events'
import { appendFile, mkdir, mkdtemp, open, rm, symlink, truncate, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import { updateRunRoutes } from '../../server/routes/update-runs'
import type { AppsService } from '../../server/services/apps'
import { upkeepDefinition } from '../../updater/shared/apps/builtin'
import { createAppPaths, createManagerPaths } from '../../updater/shared/paths'
import { createStatusFeeds, type StatusFeeds, type StatusSubscription } from '../../server/services/status-feed'
import { writeFileAtomic } from '../../updater/shared/atomic-write'
import { parseConfig } from '../../updater/shared/config'
import { silentLogger } from '../../updater/shared/log'
import { waitFor } from '../support/http-request'

let dir: string
let file: string
let feeds: StatusFeeds

const line = (id: number, type = 'log', extra: object = {}) => JSON.stringify({ id, updateId: 'u', at: '2026-11-23T10:00:00.000Z', type, ...extra }) + '\n'
const lines = (...ids: number[]) => ids.map((id) => line(id)).join('')

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'upkeep-feed-'))
  file = path.join(dir, 'update-status.jsonl')
})
afterEach(async () => {
  feeds?.close()
  await rm(dir, { recursive: true, force: true })
})

/** The next events a subscription gets, waiting for them (a bound only for a broken build). */
async function next(sub: StatusSubscription, count = 1): Promise<number[]> {
  const got: number[] = []
  await waitFor(async () => {
    got.push(...sub.take().map((e) => e.id))
    if (got.length < count) await sub.wait(1000)
    return got.length >= count
  }, `${count} event(s)`, 20_000)
  return got
}

describe('status feed: one reader per status file', () => {
  test.each([
    ['fs.watch', true, 60_000],
    ['the poll alone', false, 10],
  ])('new lines reach a subscriber, through %s', async (_how, watch, pollMs) => {
    feeds = createStatusFeeds({ log: silentLogger(), watch, pollMs })
    await writeFile(file, lines(1, 2, 3))
    const sub = feeds.feed(file).subscribe(1)
    expect(await next(sub, 2)).toEqual([2, 3])
    await appendFile(file, line(4))
    expect(await next(sub)).toEqual([4])
    // A line still being written is held back until its newline arrives.
    const torn = line(5)
    await appendFile(file, torn.slice(0, 20))
    await appendFile(file, torn.slice(20) + line(6))
    expect(await next(sub, 2)).toEqual([5, 6])
    sub.close()
  })

  test('takeSse frames events as writeSSE does, a chunk of about maxBytes at a time', async () => {
    feeds = createStatusFeeds({ log: silentLogger(), pollMs: 10 })
    await writeFile(file, lines(1, 2, 3))
    const sub = feeds.feed(file).subscribe(0)
    // Another subscriber sees when the file has been read: the events are there for both.
    expect(await next(feeds.feed(file).subscribe(0), 3)).toEqual([1, 2, 3])
    const first = sub.takeSse(1)
    expect(first).toBe(`data: ${JSON.stringify(JSON.parse(line(1)))}\nid: 1\n\n`)
    expect(sub.takeSse().match(/^id: \d+$/gm)).toEqual(['id: 2', 'id: 3'])
    expect(sub.takeSse()).toBe('')
    sub.close()
  })

  test('only appended bytes are read: what was read before is never read again', async () => {
    feeds = createStatusFeeds({ log: silentLogger(), pollMs: 10 })
    await writeFile(file, line(1, 'log', { message: 'first' }) + line(2))
    const feed = feeds.feed(file)
    const sub = feed.subscribe(0)
    expect(await next(sub, 2)).toEqual([1, 2])
    // Rewrite the first line in place (same length, same inode), then append.
    const h = await open(file, 'r+')
    await h.write(line(1, 'log', { message: 'FIRST' }), 0)
    await h.close()
    await appendFile(file, line(3))
    expect(await next(sub)).toEqual([3])
    const late = feed.subscribe(0)
    const replay = late.take()
    expect(replay.map((e) => e.id)).toEqual([1, 2, 3])
    expect(JSON.parse(replay[0]!.data)).toMatchObject({ message: 'first' })
    late.close()
    sub.close()
  })

  test('a new update replaces the file: it is read afresh, ids go on', async () => {
    feeds = createStatusFeeds({ log: silentLogger(), pollMs: 10 })
    await writeFile(file, lines(1, 2))
    const feed = feeds.feed(file)
    const sub = feed.subscribe(0)
    expect(await next(sub, 2)).toEqual([1, 2])
    // What the updater does: an empty file renamed into place, then appends.
    await writeFileAtomic(file, '')
    await appendFile(file, lines(3, 4))
    expect(await next(sub, 2)).toEqual([3, 4])
    expect(feed.subscribe(0).take().map((e) => e.id)).toEqual([3, 4])
    // Cut shorter in place and written again: read from its start.
    await truncate(file, 0)
    await appendFile(file, line(5))
    expect(await next(sub)).toEqual([5])
  })

  test('200 subscribers: one read per change, not one per subscriber', async () => {
    feeds = createStatusFeeds({ log: silentLogger(), pollMs: 60_000 })
    await writeFile(file, lines(1))
    const feed = feeds.feed(file)
    const subs = Array.from({ length: 200 }, () => feed.subscribe(0))
    for (const s of subs) expect(await next(s)).toEqual([1])
    const before = feed.reads
    await appendFile(file, line(2))
    for (const s of subs) expect(await next(s)).toEqual([2])
    expect(feed.reads - before).toBeGreaterThanOrEqual(1)
    expect(feed.reads - before).toBeLessThan(10)
    for (const s of subs) s.close()
    expect(feed.subscribers).toBe(0)
  })

  test('a symlink or a FIFO at the path is not read; a real file later is', async () => {
    feeds = createStatusFeeds({ log: silentLogger(), pollMs: 10 })
    const elsewhere = path.join(dir, 'elsewhere.jsonl')
    await writeFile(elsewhere, lines(1, 2))
    await symlink(elsewhere, file)
    const feed = feeds.feed(file)
    const sub = feed.subscribe(0)
    const reads = feed.reads
    await waitFor(() => feed.reads > reads + 2, 'a few reads')
    expect(sub.take()).toEqual([])
    await rm(file)
    await writeFile(file, lines(3))
    expect(await next(sub)).toEqual([3])
  })

  test('feeds are kept per file: two status files, two readers', async () => {
    feeds = createStatusFeeds({ log: silentLogger(), pollMs: 10 })
    const other = path.join(dir, 'other', 'update-status.jsonl')
    await mkdir(path.dirname(other))
    await writeFile(file, lines(1))
    await writeFile(other, lines(7))
    expect(feeds.feed(file)).toBe(feeds.feed(path.join(dir, '.', 'update-status.jsonl')))
    expect(await next(feeds.feed(file).subscribe(0))).toEqual([1])
    expect(await next(feeds.feed(other).subscribe(0))).toEqual([7])
  })
})

describe('GET /api/updates/events on the shared feed', () => {
  test('50 open streams are 50 subscriptions of one feed; each gets every new event; closing them unsubscribes', async () => {
    const config = parseConfig({ APP_DIR: dir }, { appDir: dir, cwd: dir })
    await mkdir(config.dataDir, { recursive: true })
    const status = path.join(config.dataDir, 'update-status.jsonl')
    await writeFile(status, lines(1))
    feeds = createStatusFeeds({ log: silentLogger(), pollMs: 60_000 })
    const feed = feeds.feed(status)
    const shutdown = new AbortController()
    const apps = { get: async () => ({ paths: createAppPaths(upkeepDefinition(config), createManagerPaths(config)) }) } as unknown as AppsService
    const app = updateRunRoutes({ apps, log: silentLogger(), statusFeeds: feeds, heartbeatMs: 50, shutdown: shutdown.signal })
    const readers = await Promise.all(Array.from({ length: 50 }, async () => (await app.request('/events')).body!.getReader()))
    await waitFor(() => feed.subscribers === 50, '50 subscriptions')
    // Streams hang no listener of their own on anything shared: one for all of them ends them on shutdown.
    expect(getEventListeners(shutdown.signal, 'abort')).toHaveLength(1)
    const texts = readers.map(() => '')
    const readUntil = async (i: number, needle: string) => {
      while (!texts[i]!.includes(needle)) {
        const { value, done } = await readers[i]!.read()
        if (done) throw new Error(`stream ${i} ended before ${needle}`)
        texts[i] += new TextDecoder().decode(value)
      }
    }
    await Promise.all(readers.map((_, i) => readUntil(i, 'id: 1\n')))
    await appendFile(status, line(2, 'finished', { status: 'complete', durationMs: 1 }))
    await Promise.all(readers.map((_, i) => readUntil(i, 'id: 2\n')))
    // Quiet streams still send a keep-alive (the wait times out; nothing piles up per wait).
    await readUntil(0, ': keep-alive')
    expect(texts.every((t) => t.includes('"type":"finished"'))).toBe(true)
    for (const r of readers.slice(25)) await r.cancel()
    await waitFor(() => feed.subscribers === 25, 'the cancelled streams to unsubscribe')
    // The server drains: the other streams end.
    shutdown.abort()
    for (const r of readers.slice(0, 25)) while (!(await r.read()).done);
    expect(feed.subscribers).toBe(0)
  })
})
