import { watch, type FSWatcher } from 'node:fs'
import { open } from 'node:fs/promises'
import path from 'node:path'
import { NO_FOLLOW_READ } from '../../updater/shared/data-file'
import type { Logger } from '../../updater/shared/log'
import { parseStatusLines } from '../../updater/shared/status'

// One reader per status file feeds every open event stream: it reads only what was appended
// since its last read (when fs.watch says the file changed, and on a slow poll in case it
// does not), parses each new line once, and wakes the streams. A stream costs a cursor.

/** A status event ready to send: its id and the event as JSON. */
export interface FeedEvent {
  id: number
  data: string
}

export interface StatusSubscription {
  /** Events after the last one taken (at first: after `afterId`), oldest first; empty when there is none. */
  take(): FeedEvent[]
  /**
   * The next events as Server-Sent Events text, about `maxBytes` of them at most (framed as hono's
   * `writeSSE` frames one: `data:` then `id:`); '' when there is none. A stream takes a chunk when
   * it writes, and holds no more than one while the client reads it.
   */
  takeSse(maxBytes?: number): string
  /** Resolves when there is something to take, after `timeoutMs`, or once closed. */
  wait(timeoutMs: number): Promise<void>
  close(): void
  readonly closed: boolean
}

export interface StatusFeed {
  subscribe(afterId: number): StatusSubscription
  /** Ends every subscription (the server drains). */
  closeAll(): void
  /** Open subscriptions. */
  readonly subscribers: number
  /** Reads of the file so far (each reads only the appended bytes). */
  readonly reads: number
}

export interface StatusFeeds {
  /** The one feed of `file` (a status file per app: each has its own). */
  feed(file: string): StatusFeed
  /** Ends every subscription and stops watching. */
  close(): void
}

export interface StatusFeedOptions {
  log: Logger
  /** How often the file is looked at while someone subscribes, whatever fs.watch says. */
  pollMs?: number
  /** The status file is read up to this size (as `readStatusEvents` does). */
  maxBytes?: number
  /** false: the poll alone (as on a filesystem without inotify). */
  watch?: boolean
}

const DEFAULT_POLL_MS = 1000
const DEFAULT_MAX_BYTES = 64 << 20
const CHUNK_BYTES = 1 << 20

export function createStatusFeeds(opts: StatusFeedOptions): StatusFeeds {
  const feeds = new Map<string, ReturnType<typeof createFeed>>()
  return {
    feed(file) {
      const key = path.resolve(file)
      let f = feeds.get(key)
      if (!f) feeds.set(key, (f = createFeed(key, opts)))
      return f
    },
    close() {
      for (const f of feeds.values()) f.closeAll()
    },
  }
}

interface Subscriber {
  last: number
  wake?: () => void
  closed: boolean
}

function createFeed(file: string, opts: StatusFeedOptions) {
  const pollMs = opts.pollMs ?? DEFAULT_POLL_MS
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES
  const subs = new Set<Subscriber>()
  let reads = 0

  // What has been read of the file: its inode, how far, a last line still without its newline.
  let ino: number | undefined
  let offset = 0
  let partial: Buffer = Buffer.alloc(0)
  let events: FeedEvent[] = []
  let problem: string | undefined

  let watcher: FSWatcher | undefined
  let poll: NodeJS.Timeout | undefined
  let reading: Promise<void> | undefined
  let again = false

  function forget() {
    ino = undefined
    offset = 0
    partial = Buffer.alloc(0)
    events = []
  }

  // Logged once per kind of trouble, not on every poll.
  function trouble(message: string | undefined) {
    if (message && message !== problem) opts.log.warn({ file, problem: message }, 'status file not readable; event streams wait')
    problem = message
  }

  function ingest(chunk: Buffer) {
    const data = partial.length ? Buffer.concat([partial, chunk]) : chunk
    const end = data.lastIndexOf(0x0a)
    if (end < 0) {
      partial = data
      return
    }
    partial = Buffer.from(data.subarray(end + 1))
    // Lines that do not parse (a torn line after a power cut) are skipped, as parseStatusLines does.
    for (const e of parseStatusLines(data.toString('utf8', 0, end))) events.push({ id: e.id, data: JSON.stringify(e) })
  }

  async function readAppended(): Promise<void> {
    reads++
    let h
    try {
      h = await open(file, NO_FOLLOW_READ)
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'ENOENT') forget()
      trouble(code === 'ENOENT' ? undefined : code === 'ELOOP' ? 'a symbolic link' : String(code ?? err))
      return
    }
    try {
      const s = await h.stat()
      if (!s.isFile()) return trouble('not a regular file')
      // A new update replaces the file (a new inode); a shorter file was rewritten: read it afresh.
      if (s.ino !== ino || s.size < offset) {
        forget()
        ino = s.ino
      }
      const end = Math.min(s.size, maxBytes)
      trouble(s.size > maxBytes ? `larger than ${maxBytes} bytes; read up to there` : undefined)
      while (offset < end) {
        const buf = Buffer.allocUnsafe(Math.min(end - offset, CHUNK_BYTES))
        const { bytesRead } = await h.read(buf, 0, buf.length, offset)
        if (bytesRead === 0) break
        offset += bytesRead
        ingest(buf.subarray(0, bytesRead))
      }
    } finally {
      await h.close()
    }
  }

  function wakeAll() {
    for (const s of subs) s.wake?.()
  }

  /** Reads what is new; calls arriving meanwhile are folded into one more read after it. */
  function refresh(): Promise<void> {
    if (reading) {
      again = true
      return reading
    }
    reading = (async () => {
      do {
        again = false
        const before = events.length ? events[events.length - 1] : undefined
        try {
          await readAppended()
        } catch (err) {
          trouble(err instanceof Error ? err.message : String(err))
        }
        if (events.length && events[events.length - 1] !== before) wakeAll()
      } while (again && subs.size)
    })().finally(() => {
      reading = undefined
    })
    return reading
  }

  function start() {
    if (opts.watch !== false) watchDir()
    poll = setInterval(() => void refresh(), pollMs)
    poll.unref()
  }

  function watchDir() {
    try {
      const base = path.basename(file)
      // The directory, not the file: the updater replaces the file (rename) for each update.
      watcher = watch(path.dirname(file), { persistent: false }, (_event, name) => {
        if (name === null || name === base) void refresh()
      })
      watcher.on('error', () => {
        watcher?.close()
        watcher = undefined
      })
    } catch {
      watcher = undefined // no inotify here (or out of watches): the poll alone
    }
  }

  function stop() {
    watcher?.close()
    watcher = undefined
    clearInterval(poll)
    poll = undefined
    // Nobody listens: keep nothing, read afresh for the next one.
    forget()
  }

  /** Index of the first event with an id above `last` (ids only grow within a file). */
  function firstAfter(last: number): number {
    let i = events.length
    while (i > 0 && events[i - 1]!.id > last) i--
    return i
  }

  function closeSub(s: Subscriber) {
    if (s.closed) return
    s.closed = true
    subs.delete(s)
    s.wake?.()
    if (!subs.size) stop()
  }

  return {
    get subscribers() {
      return subs.size
    },
    get reads() {
      return reads
    },
    subscribe(afterId: number): StatusSubscription {
      const s: Subscriber = { last: afterId, closed: false }
      subs.add(s)
      if (subs.size === 1) start()
      void refresh()
      return {
        take() {
          if (s.closed) return []
          const taken = events.slice(firstAfter(s.last))
          if (taken.length) s.last = taken[taken.length - 1]!.id
          return taken
        },
        takeSse(maxBytes = 64 * 1024) {
          if (s.closed) return ''
          let text = ''
          for (let i = firstAfter(s.last); i < events.length && text.length < maxBytes; i++) {
            const e = events[i]!
            // `data` is JSON.stringify output: it holds no line break that would split the field.
            text += `data: ${e.data}\nid: ${e.id}\n\n`
            s.last = e.id
          }
          return text
        },
        wait(timeoutMs) {
          if (s.closed || firstAfter(s.last) < events.length) return Promise.resolve()
          return new Promise<void>((resolve) => {
            const timer = setTimeout(done, timeoutMs)
            function done() {
              clearTimeout(timer)
              s.wake = undefined
              resolve()
            }
            s.wake = done
          })
        },
        close: () => closeSub(s),
        get closed() {
          return s.closed
        },
      }
    },
    closeAll() {
      for (const s of [...subs]) closeSub(s)
    },
  }
}
