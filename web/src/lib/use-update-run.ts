import { useEffect, useRef, useState } from 'hono/jsx/dom'
import { api, appApi, UPKEEP_APP } from '../api'
import { createRunFollower, IDLE, type FollowedRun, type RunFollower } from './run-follower'
import type { RunView } from './update-progress'

const JUST_UPDATED_KEY = 'upkeep.justUpdated'

export interface JustUpdated {
  from: string
  to: string
  durationMs?: number
}

/** Set before the reload that lands on a new version; read once by the page after it. */
export function takeJustUpdated(): JustUpdated | null {
  try {
    const raw = sessionStorage.getItem(JUST_UPDATED_KEY)
    sessionStorage.removeItem(JUST_UPDATED_KEY)
    return raw ? (JSON.parse(raw) as JustUpdated) : null
  } catch {
    return null
  }
}

function reloadOnto(view: RunView): void {
  try {
    const just: JustUpdated = { from: view.from, to: view.to, ...(view.durationMs !== undefined ? { durationMs: view.durationMs } : {}) }
    sessionStorage.setItem(JUST_UPDATED_KEY, JSON.stringify(just))
  } catch {
    /* no storage: the page still shows the new version after the reload */
  }
  window.location.reload()
}

export interface UpdateRuns {
  /** What is shown of `app`'s update run (nothing followed: idle, no run). */
  of(app: string): FollowedRun
  /** Every app with a run shown, in the order they were first followed. */
  apps(): string[]
  follow(app: string, updateId: string, initial?: RunView, opts?: { replay?: boolean }): void
  replay(app: string): void
  clear(app: string): void
}

/**
 * The update runs of every app, each followed live over its own event stream (run-follower.ts).
 * The answer is one object for the page's lifetime; a change of any run re-renders the caller.
 */
export function useUpdateRuns(): UpdateRuns {
  const [, setVersion] = useState(0)
  const followers = useRef(new Map<string, RunFollower>())
  const runs = useRef<UpdateRuns | null>(null)
  if (!runs.current) {
    const map = followers.current!
    const get = (app: string): RunFollower => {
      let f = map.get(app)
      if (!f) {
        f = createRunFollower({
          eventsUrl: appApi(app).eventsUrl,
          restartsServer: app === UPKEEP_APP,
          health: api.health,
          reloadOnto,
          onChange: () => setVersion((n) => n + 1),
        })
        map.set(app, f)
      }
      return f
    }
    runs.current = {
      of: (app) => map.get(app)?.state() ?? IDLE,
      apps: () => [...map.keys()].filter((app) => map.get(app)!.state().run !== undefined),
      follow: (app, updateId, initial, opts) => get(app).follow(updateId, initial, opts),
      replay: (app) => map.get(app)?.replay(),
      clear: (app) => map.get(app)?.clear(),
    }
  }
  useEffect(() => () => followers.current!.forEach((f) => f.stop()), [])
  return runs.current
}
