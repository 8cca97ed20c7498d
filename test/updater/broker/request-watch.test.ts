import { watch } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import { watchRequests, type RequestWatch } from '../../../updater/broker/request-watch'

// The updater's wake-up while updates run: a request that arrives starts its app's update at once.
// Each wait below is far longer than the test's timeout, so only the event can end it.
const NEVER = 600_000

describe('watchRequests', () => {
  let dir: string
  let w: RequestWatch | undefined
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'upkeep-request-watch-'))
  })
  afterEach(async () => {
    w?.close()
    await rm(dir, { recursive: true, force: true })
  })

  test("wakes on Upkeep's own request file", async () => {
    w = watchRequests(dir, path.join(dir, 'requests'))
    const woken = w.next(NEVER)
    await writeFile(path.join(dir, 'update-request.json'), '{}')
    await woken
  }, 20_000)

  test('wakes on a request in requests/, also when that folder appears after the watch began', async () => {
    w = watchRequests(dir, path.join(dir, 'requests'))
    const first = w.next(NEVER)
    await mkdir(path.join(dir, 'requests'))
    await first
    const second = w.next(NEVER)
    await writeFile(path.join(dir, 'requests', 'notes.json'), '{}')
    await second
  }, 20_000)

  test('a change seen between two waits is not lost', async () => {
    await mkdir(path.join(dir, 'requests'))
    w = watchRequests(dir, path.join(dir, 'requests'))
    await writeFile(path.join(dir, 'requests', 'notes.json'), '{}')
    // Poll until inotify has delivered it, without waiting on the watcher itself.
    await expect.poll(async () => {
      const r = await Promise.race([w!.next(50).then(() => 'woke'), new Promise((res) => setTimeout(() => res('timeout'), 5_000))])
      return r
    }).toBe('woke')
  }, 20_000)

  test("a running update's own files do not count as requests", async () => {
    w = watchRequests(dir, path.join(dir, 'requests'))
    let woke = false
    const waiting = w.next(NEVER).then(() => (woke = true))
    // A second watcher on the same folder proves the events were delivered before `woke` is read.
    const seen = new Set<string>()
    const delivered = new Promise<void>((resolve) => {
      const probe = watch(dir, (_e, name) => {
        seen.add(String(name))
        if (seen.has('update-journal.json') && seen.has('update-status.jsonl')) {
          probe.close()
          // One more turn of the loop, so the other watcher's callbacks of the same batch ran too.
          setImmediate(resolve)
        }
      })
    })
    await writeFile(path.join(dir, 'update-journal.json'), '{}')
    await writeFile(path.join(dir, 'update-status.jsonl'), '{}')
    await delivered
    expect(woke).toBe(false)
    await writeFile(path.join(dir, 'update-request.json'), '{}')
    await waiting
  }, 20_000)
})
