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
}
