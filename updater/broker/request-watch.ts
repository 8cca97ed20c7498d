import { watch, type FSWatcher } from 'node:fs'
import path from 'node:path'

/**
 * Wakes the updater when a new update request may have arrived while other apps' updates run,
 * so a second app's update starts at once instead of after the first one ends. Only a wake-up:
 * the requests are still taken (and checked) by their owner; the events are filtered by name so
 * a running update's own files do not wake it, and a slow poll covers what inotify misses.
 */
export interface RequestWatch {
  /** Resolves on the next request-like change, or after `ms`. */
  next(ms: number): Promise<void>
  close(): void
}

export function watchRequests(dataDir: string, requestsDir: string): RequestWatch {
  let wake: (() => void) | undefined
  let pending = false
  const poke = () => {
    pending = true
    wake?.()
  }
  const watchers: FSWatcher[] = []
  let requestsWatched = false
  const add = (dir: string, wanted: (name: string) => boolean) => {
    try {
      const w = watch(dir, { persistent: false }, (_event, name) => {
        if (name === null || wanted(String(name))) poke()
      })
      w.on('error', () => w.close())
      watchers.push(w)
      if (dir === requestsDir) requestsWatched = true
    } catch {
      // Not there (yet): the data dir's watcher sees it appear, the poll covers the rest.
    }
  }
  const watchRequestsDir = () => add(requestsDir, (name) => name.endsWith('.json'))
  add(dataDir, (name) => {
    if (name !== path.basename(requestsDir)) return name === 'update-request.json'
    if (!requestsWatched) watchRequestsDir()
    return true
  })
  watchRequestsDir()
  return {
    next(ms) {
      if (pending) {
        pending = false
        return Promise.resolve()
      }
      return new Promise<void>((resolve) => {
        const timer = setTimeout(done, ms)
        function done() {
          clearTimeout(timer)
          wake = undefined
          pending = false
          resolve()
        }
        wake = done
      })
    },
    close() {
      for (const w of watchers) w.close()
      wake?.()
    },
  }
}
