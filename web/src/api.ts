import { hc } from 'hono/client'
import type { AppType } from '../../server/app'

// The typed API client: paths, bodies and answers come from the server's own route types.

export const client = hc<AppType>('/', { init: { credentials: 'same-origin' } })

/** An API answer that was not 2xx, with the server's `{ error: { code, message, hint } }`. */
export class ApiError extends Error {
  override name = 'ApiError'
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly hint?: string,
    readonly retryAfter?: number,
  ) {
    super(message)
  }
}

/** Fired when any call answers 401: the app shows the login page. */
export const UNAUTHORIZED_EVENT = 'upkeep:unauthorized'

interface AnyResponse {
  ok: boolean
  status: number
  headers: Headers
  json(): Promise<unknown>
}

/** What a response's json() resolves to (a union when the route answers in several shapes). */
type Body<R extends AnyResponse> = Awaited<ReturnType<R['json']>>

/** Unwraps a response: the parsed JSON when ok, an ApiError otherwise. */
export async function unwrap<R extends AnyResponse>(res: R): Promise<Body<R>> {
  if (res.ok) return (await res.json()) as Body<R>
  let body: { error?: { code?: string; message?: string; hint?: string } } = {}
  try {
    body = (await res.json()) as typeof body
  } catch {
    /* not JSON: a proxy's error page */
  }
  if (res.status === 401) window.dispatchEvent(new Event(UNAUTHORIZED_EVENT))
  const retry = Number(res.headers.get('retry-after'))
  throw new ApiError(
    res.status,
    body.error?.code ?? 'HTTP_' + res.status,
    body.error?.message ?? `the server answered ${res.status}`,
    body.error?.hint,
    Number.isFinite(retry) && retry > 0 ? retry : undefined,
  )
}

/** Calls `fn`; a network failure (server restarting) becomes an ApiError with status 0. */
export async function call<R extends AnyResponse>(fn: () => Promise<R>): Promise<Body<R>> {
  let res: R
  try {
    res = await fn()
  } catch {
    throw new ApiError(0, 'UNREACHABLE', 'the server cannot be reached')
  }
  return unwrap(res)
}

export type UpdatesStatus = Awaited<ReturnType<typeof api.updates>>
export type SettingsView = Awaited<ReturnType<typeof api.settings>>
export type HistoryEntries = Awaited<ReturnType<typeof api.history>>['entries']
/** A line of the apps list: an app's status and last update, or the error of its broken definition. */
export type AppSummary = Awaited<ReturnType<typeof api.apps>>['apps'][number]

export const api = {
  health: () => call(() => client.api.health.$get()),
  session: () => call(() => client.api.auth.session.$get()),
  login: (password: string) => call(() => client.api.auth.login.$post({ json: { password } })),
  logout: () => call(() => client.api.auth.logout.$post()),
  updates: () => call(() => client.api.updates.$get()),
  check: () => call(() => client.api.updates.check.$post()),
  settings: () => call(() => client.api.settings.$get()),
  saveSettings: (patch: { updateRepo?: string | null; channel?: 'stable' | 'prerelease'; checkEnabled?: boolean }) =>
    call(() => client.api.settings.$put({ json: patch })),
  apply: (body: { version?: string; backup?: boolean }) => call(() => client.api.updates.apply.$post({ json: body })),
  history: () => call(() => client.api.updates.history.$get({ query: {} })),
  apps: () => call(() => client.api.apps.$get()),
}

/** Upkeep's own name among the apps. */
export const UPKEEP_APP = 'upkeep'

/** The update routes of one app: the same calls, whichever app they are about. */
export interface AppUpdatesApi {
  name: string
  updates(): Promise<UpdatesStatus>
  check(): Promise<UpdatesStatus>
  apply(body: { version?: string; backup?: boolean }): Promise<{ updateId: string }>
  history(): Promise<{ entries: HistoryEntries }>
  /** The event stream of its update runs (EventSource; not a typed route). */
  eventsUrl(lastEventId?: number): string
}

const apis = new Map<string, AppUpdatesApi>()

/**
 * The API of one app's updates: Upkeep's own stay at /api/updates (today's routes), another
 * app's are /api/apps/<name>/updates.
 */
export function appApi(name: string): AppUpdatesApi {
  const known = apis.get(name)
  if (known) return known
  const events = name === UPKEEP_APP ? '/api/updates/events' : `/api/apps/${encodeURIComponent(name)}/updates/events`
  const base = { name, eventsUrl: (last?: number) => `${events}${last ? `?lastEventId=${last}` : ''}` }
  const param = { param: { app: name } }
  const routes = client.api.apps[':app'].updates
  const made: AppUpdatesApi =
    name === UPKEEP_APP
      ? { ...base, updates: api.updates, check: api.check, apply: api.apply, history: api.history }
      : {
          ...base,
          updates: () => call(() => routes.$get(param)),
          check: () => call(() => routes.check.$post(param)),
          // The route reads its body itself (no validator), so its type names no `json`; the client still sends it.
          apply: (body) => call(() => routes.apply.$post({ ...param, json: body } as typeof param)),
          history: () => call(() => routes.history.$get(param)),
        }
  apis.set(name, made)
  return made
}
