import type { Context } from 'hono'
import { getConnInfo } from '@hono/node-server/conninfo'
import { UpdateError } from '../updater/shared/errors'

// What a request says about where it came from. X-Forwarded-* headers are believed only from a
// proxy on this machine (a loopback or unix-socket peer); anyone else could forge them.

/** The TCP peer's address; undefined for a unix socket or when unknown (app.request in tests). */
function peerAddress(c: Context): string | undefined {
  try {
    return getConnInfo(c).remote.address
  } catch {
    return undefined
  }
}

function hasSocket(c: Context): boolean {
  const env = c.env as { incoming?: unknown; server?: { incoming?: unknown } } | undefined
  return Boolean(env?.incoming ?? env?.server?.incoming)
}

export function isLoopbackAddress(address: string): boolean {
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.')
}

/** True when the peer is a process on this machine (loopback TCP or a unix socket). */
export function isLocalPeer(c: Context): boolean {
  const address = peerAddress(c)
  if (address === undefined) return hasSocket(c)
  return isLoopbackAddress(address)
}

const firstValue = (header: string | undefined) => header?.split(',')[0]?.trim().toLowerCase()

/** True when the browser talks https: directly, or through a local proxy that says so. */
export function isHttps(c: Context): boolean {
  if (new URL(c.req.url).protocol === 'https:') return true
  return isLocalPeer(c) && firstValue(c.req.header('x-forwarded-proto')) === 'https'
}

/** The origin the browser used, e.g. `https://upkeep.example.com`, for the CSRF check. */
export function requestOrigin(c: Context): string {
  const url = new URL(c.req.url)
  const forwardedHost = isLocalPeer(c) ? firstValue(c.req.header('x-forwarded-host')) : undefined
  const host = forwardedHost ?? c.req.header('host') ?? url.host
  return `${isHttps(c) ? 'https' : 'http'}://${host}`.toLowerCase()
}

/** Who is logging in, for the login throttle: the peer, or the client a local proxy names. */
export function clientAddress(c: Context): string {
  const peer = peerAddress(c)
  if (isLocalPeer(c)) {
    // The last X-Forwarded-For entry is the one our own proxy appended; earlier ones are the client's say-so.
    const forwarded = c.req.header('x-forwarded-for')?.split(',').pop()?.trim()
    if (forwarded) return forwarded
  }
  return peer ?? 'local'
}

/** The JSON body of a mutating request; `BAD_REQUEST` unless it is a JSON object sent as such. */
export async function readJsonBody(c: Context): Promise<Record<string, unknown>> {
  const type = c.req.header('content-type') ?? ''
  if (!/^application\/json\b/i.test(type)) {
    throw new UpdateError('BAD_REQUEST', 'the request body must be JSON', { hint: 'send Content-Type: application/json' })
  }
  let body: unknown
  try {
    body = await c.req.json()
  } catch {
    throw new UpdateError('BAD_REQUEST', 'the request body is not valid JSON')
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new UpdateError('BAD_REQUEST', 'the request body must be a JSON object')
  return body as Record<string, unknown>
}
