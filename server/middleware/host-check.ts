import { isIP } from 'node:net'
import type { MiddlewareHandler } from 'hono'
import type { Config } from '../../updater/shared/config'
import { UpdateError } from '../../updater/shared/errors'
import { isLocalPeer } from '../request-info'

// DNS rebinding: a page on evil.example re-resolves its own name to 127.0.0.1 (or the LAN
// address Upkeep listens on); the browser then sends it our way as same-origin with evil.example,
// so the Origin check passes and the page can try passwords. The browser still says which name
// it asked for, in Host: answering only to our own names stops it.

export type HostPolicy = Pick<Config, 'host' | 'allowedHosts'>

/** The host name in a `Host` header, lowercase, without port or final dot (`[::1]` keeps its brackets); undefined when malformed. */
export function hostName(header: string): string | undefined {
  if (!header || /[\s@/\\?#]/.test(header)) return undefined
  try {
    const name = new URL(`http://${header}`).hostname
    return name.endsWith('.') ? name.slice(0, -1) : name
  } catch {
    return undefined
  }
}

const isAddress = (name: string) => isIP(name.replace(/^\[(.*)\]$/, '$1')) !== 0

/**
 * True when the server answers to `header`: loopback names (`localhost`, `*.localhost`), any IP
 * address (a literal address is not a name that can be rebound), HOST when it is a name, and
 * the names of UPKEEP_ALLOWED_HOSTS (`*` there: any). Pure.
 */
export function isAllowedHost(header: string, policy: HostPolicy): boolean {
  if (policy.allowedHosts === '*') return true
  const name = hostName(header)
  if (name === undefined) return false
  if (name === 'localhost' || name.endsWith('.localhost') || isAddress(name)) return true
  if (name === hostName(policy.host)) return true
  return policy.allowedHosts.includes(name)
}

/**
 * Refuses (421) a request for a host name this server does not answer to: `Host`, and
 * `X-Forwarded-Host` when a proxy on this machine sends it (that is the name the browser used).
 * A request without Host (HTTP/1.0, tests) did not come from a browser and passes.
 */
export function hostCheck(policy: HostPolicy): MiddlewareHandler {
  return async (c, next) => {
    const claimed = [c.req.header('host'), isLocalPeer(c) ? c.req.header('x-forwarded-host')?.split(',')[0]?.trim() : undefined]
    for (const header of claimed) {
      if (header === undefined || isAllowedHost(header, policy)) continue
      throw new UpdateError('UNKNOWN_HOST', `this server does not answer to the host name ${JSON.stringify(header.slice(0, 100))}`, {
        hint: 'open Upkeep by an address it listens on (e.g. http://127.0.0.1:PORT); to reach it by this name (a reverse proxy, HOST=0.0.0.0), add the name to UPKEEP_ALLOWED_HOSTS',
      })
    }
    return next()
  }
}
