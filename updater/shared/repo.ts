import { UpdateError } from './errors'

// GitHub repository names: the one piece of operator input that ends up in URLs and git
// commands. Validated here, strictly, by both server and updater; nothing else may reach git.

/** `owner/name`, already validated. */
export interface RepoRef {
  owner: string
  name: string
}

// Logins: letters, digits and hyphens (underscores for enterprise managed users), at most 39.
const OWNER_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,38}$/
// Repository names: letters, digits, '-', '_' and '.', at most 100.
const NAME_RE = /^[A-Za-z0-9._-]{1,100}$/

export const REPO_HINT = 'use owner/name, e.g. acme/widget: letters, digits, "-", "_" and "."; no "..", no leading "-"'

/** Why `value` is not a valid `owner/name`, or undefined when it is. Pure. */
export function repoProblem(value: string): string | undefined {
  const bad = /[^A-Za-z0-9._/-]/.exec(value)
  if (bad) return `${JSON.stringify(bad[0])} cannot be part of a repository name`
  const parts = value.split('/')
  if (parts.length !== 2) return 'must be exactly owner/name'
  const [owner, name] = parts as [string, string]
  if (!owner || !name) return 'owner and name must not be empty'
  if (owner.startsWith('-') || name.startsWith('-')) return 'must not start with "-"'
  if (!OWNER_RE.test(owner)) return `owner "${owner}" may only hold letters, digits, "-" and "_" (at most 39)`
  if (!NAME_RE.test(name)) return `name "${name}" is longer than 100 characters`
  if (name.includes('..') || name === '.') return 'must not contain ".."'
  if (name.toLowerCase().endsWith('.git')) return 'must not end in ".git"'
  return undefined
}

export function isValidRepo(value: string): boolean {
  return repoProblem(value) === undefined
}

/** Shows untrusted input in a message without control characters or unbounded length. */
export function quoteInput(value: string): string {
  const short = value.length > 120 ? `${value.slice(0, 120)}…` : value
  return JSON.stringify(short)
}

/** Returns `value` as a `RepoRef`, or throws `BAD_REPO` saying what is wrong and how it should look. */
export function verifyRepo(value: string, what = 'repository'): RepoRef {
  const problem = repoProblem(value)
  if (problem) throw new UpdateError('BAD_REPO', `${what} ${quoteInput(value)} is not a GitHub repository name: ${problem}`, { hint: REPO_HINT })
  const [owner, name] = value.split('/') as [string, string]
  return { owner, name }
}

/**
 * The web hosts whose clone URLs belong to the API at `apiUrl`: github.com for
 * api.github.com, `HOST` for GitHub Enterprise Server (`https://HOST/api/v3`),
 * `SUB.ghe.com` for GitHub Enterprise Cloud (`https://api.SUB.ghe.com`).
 */
export function webHostsFor(apiUrl: string): string[] {
  const host = new URL(apiUrl).hostname.toLowerCase()
  if (host === 'api.github.com') return ['github.com', 'www.github.com', 'ssh.github.com']
  if (host.startsWith('api.')) return [host.slice('api.'.length), host]
  return [host]
}

// user@host:owner/name(.git), the scp-like syntax git accepts for ssh.
const SCP_RE = /^(?:[A-Za-z0-9._~-]+@)?([A-Za-z0-9.-]+):(?!\/)([^\s]+)$/

/**
 * Reads `owner/name` out of a clone URL: `https://github.com/o/n(.git)`, `git@github.com:o/n.git`,
 * `ssh://git@github.com/o/n.git`, `git://…`; only for `hosts` (see `webHostsFor`). Undefined
 * for anything else, including a valid-looking URL with an invalid owner or name. Pure.
 */
export function parseRepoUrl(url: string, hosts: readonly string[]): (RepoRef & { host: string }) | undefined {
  const raw = url.trim()
  let host: string
  let pathPart: string
  if (raw.includes('://')) {
    let u: URL
    try {
      u = new URL(raw)
    } catch {
      return undefined
    }
    if (!['https:', 'http:', 'ssh:', 'git:', 'git+ssh:', 'ssh+git:'].includes(u.protocol)) return undefined
    if (u.search || u.hash) return undefined
    host = u.hostname
    pathPart = decodeURIComponentSafe(u.pathname)
  } else {
    const m = SCP_RE.exec(raw)
    if (!m) return undefined
    host = m[1]!
    pathPart = m[2]!
  }
  host = host.toLowerCase()
  if (!hosts.map((h) => h.toLowerCase()).includes(host)) return undefined
  const repo = pathPart.replace(/^\/+/, '').replace(/\/+$/, '').replace(/\.git$/i, '')
  if (!isValidRepo(repo)) return undefined
  const [owner, name] = repo.split('/') as [string, string]
  return { owner, name, host }
}

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s)
  } catch {
    return s
  }
}

/** A URL without its password or token, fit for messages and logs. */
export function redactUrl(url: string): string {
  if (!url.includes('://')) return url
  try {
    const u = new URL(url)
    if (u.username || u.password) {
      u.username = u.username ? '***' : ''
      u.password = ''
    }
    return u.href
  } catch {
    return url.replace(/\/\/[^/@]*@/, '//***@')
  }
}

/**
 * What an operator typed for a repository: `owner/name`, or a clone URL of a host in `hosts`.
 * Returns the normalized `owner/name`; throws `BAD_REPO` otherwise.
 */
export function parseRepoInput(value: string, hosts: readonly string[], what = 'repository'): string {
  const v = value.trim()
  if (v.includes('://') || SCP_RE.test(v)) {
    const ref = parseRepoUrl(v, hosts)
    if (!ref) {
      throw new UpdateError('BAD_REPO', `${what} ${quoteInput(redactUrl(v))} is not a repository URL of ${hosts.join(' or ')}`, { hint: REPO_HINT })
    }
    return `${ref.owner}/${ref.name}`
  }
  const ref = verifyRepo(v, what)
  return `${ref.owner}/${ref.name}`
}
