import { readdir } from 'node:fs/promises'
import path from 'node:path'
import { APP_NAME_RE } from '../shared/apps/definition'
import type { Registry } from '../shared/apps/registry'
import type { Config } from '../shared/config'
import { UpdateError } from '../shared/errors'
import { createAppPaths, createManagerPaths, UPKEEP_APP } from '../shared/paths'
import { parseUpdateRequest, takeUpdateRequest, type UpdateRequest } from '../shared/request'
import { isLockHeld } from '../shared/update-activity'

/** A request as taken from Upkeep's data dir: valid, for a known app, or refused with the reason. */
export type TakenAppRequest = { app: string; ok: true; request: UpdateRequest } | { app: string; ok: false; error: { code: string; message: string } }

/**
 * Takes the pending update requests: Upkeep's own `update-request.json` and `requests/<app>.json`
 * for the other apps. Run as the owner of the data dir (the server's user), never as root: the
 * server can plant anything there. A request of an app whose update is running stays where it is
 * (the next run takes it), so it is not lost; so does one of an app in `skip` (its worker is
 * starting, before it holds the lock).
 */
export async function takeRequests(config: Config, registry: Registry, skip: ReadonlySet<string> = new Set()): Promise<TakenAppRequest[]> {
  const manager = createManagerPaths(config)
  const candidates: { app: string; file: string }[] = [{ app: UPKEEP_APP, file: path.join(config.dataDir, 'update-request.json') }]
  for (const name of await readdir(manager.requestsDir).catch(() => [] as string[])) {
    const app = name.endsWith('.json') ? name.slice(0, -5) : ''
    candidates.push({ app, file: path.join(manager.requestsDir, name) })
  }
  const out: TakenAppRequest[] = []
  for (const c of candidates) {
    if (!APP_NAME_RE.test(c.app) || (c.app === UPKEEP_APP && c.file !== path.join(config.dataDir, 'update-request.json'))) {
      const taken = await takeUpdateRequest(c.file)
      if (taken) out.push({ app: c.app.slice(0, 40), ok: false, error: { code: 'BAD_REQUEST', message: `${path.basename(c.file).slice(0, 60)} does not name an app` } })
      continue
    }
    let def
    try {
      def = await registry.get(c.app)
    } catch (err) {
      const taken = await takeUpdateRequest(c.file)
      if (taken) out.push({ app: c.app, ok: false, error: err instanceof UpdateError ? { code: err.code, message: err.message } : { code: 'BAD_REQUEST', message: String(err) } })
      continue
    }
    if (skip.has(c.app) || (await isLockHeld(createAppPaths(def, manager)))) continue
    const taken = await takeUpdateRequest(c.file)
    if (!taken) continue
    out.push(taken.ok ? { app: c.app, ok: true, request: taken.request } : { app: c.app, ok: false, error: { code: taken.error.code, message: taken.error.message } })
  }
  return out
}

/** Validates what a `take-requests` child printed, as strictly as the request files themselves. Pure. */
export function parseTakenRequests(text: string): TakenAppRequest[] {
  const value = JSON.parse(text) as unknown
  if (!Array.isArray(value)) throw new Error('take-requests printed no list')
  return value.map((v): TakenAppRequest => {
    const e = v as Record<string, unknown>
    const app = typeof e.app === 'string' ? e.app : ''
    if (e.ok === true && APP_NAME_RE.test(app)) return { app, ok: true, request: parseUpdateRequest(e.request) }
    const err = (e.error ?? {}) as Record<string, unknown>
    return { app: app.slice(0, 40), ok: false, error: { code: String(err.code ?? 'BAD_REQUEST').slice(0, 40), message: String(err.message ?? 'refused').slice(0, 500) } }
  })
}
