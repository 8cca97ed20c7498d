import path from 'node:path'
import { artifactUrlProblem } from './artifact-url'
import { repoProblem, REPO_HINT } from './repo'

export type ServiceManagerKind = 'systemd' | 'process'
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'

export interface Config {
  port: number
  host: string
  appDir: string
  dataDir: string
  backupDir: string
  updateRepo: string | undefined
  /** Where Upkeep's own signed release artifacts are, an URL pattern with {version}/{tag}: UPKEEP_ARTIFACTS_URL. */
  artifactsUrl: string | undefined
  githubToken: string | undefined
  /** Admin password for the first start only (it is stored hashed); later starts ignore it. */
  adminPassword: string | undefined
  githubApiUrl: string
  updateCheckDisabled: boolean
  serviceManager: ServiceManagerKind
  logLevel: LogLevel
  /** Root of the other apps' update state (journal, history, lock, backups): UPKEEP_STATE_DIR. */
  stateDir: string
  /** App definitions, one `<name>.json` each: UPKEEP_APPS_DIR. */
  appsDir: string
  /** Upkeep's own health step waits this long for the new version: UPKEEP_HEALTH_TIMEOUT. */
  healthTimeoutMs: number
  /** Backups of Upkeep's data kept: UPKEEP_BACKUP_KEEP. */
  backupKeep: number
  /** No journal progress for this long: the update is stale, stopped, marked failed: UPKEEP_STALE_AFTER. */
  staleAfterMs: number
  /** Host names the server answers to besides loopback and HOST (UPKEEP_ALLOWED_HOSTS); `*`: any. */
  allowedHosts: readonly string[] | '*'
  /** Upkeep's own new version is watched this long after its health check (the soak): UPKEEP_SOAK. */
  soakMs: number
}

export type Env = Readonly<Record<string, string | undefined>>

/** A bad environment variable; `variables` names every one that was wrong. */
export class ConfigError extends Error {
  override name = 'ConfigError'
  constructor(readonly problems: readonly { variable: string; message: string }[]) {
    super(problems.map((p) => `${p.variable}: ${p.message}`).join('\n'))
  }
  get variables(): string[] {
    return this.problems.map((p) => p.variable)
  }
}

/** Shortest admin password accepted, from the environment or `upkeep set-password`. */
export const MIN_PASSWORD_LENGTH = 8

const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']
const TRUE = ['1', 'true', 'yes', 'on']
const FALSE = ['0', 'false', 'no', 'off']

export interface ConfigDefaults {
  /** The checkout root, used when APP_DIR is unset. */
  appDir: string
  /** Relative paths in the environment are resolved against this. */
  cwd: string
}

/**
 * The one place environment variables are read. Pure: the same env gives the same config.
 * Empty values count as unset (systemd's `Environment=PORT=` clears a variable that way).
 */
export function parseConfig(env: Env, defaults: ConfigDefaults): Config {
  const problems: { variable: string; message: string }[] = []
  const get = (name: string): string | undefined => {
    const v = env[name]?.trim()
    return v ? v : undefined
  }
  const fail = <T>(variable: string, message: string, fallback: T): T => {
    problems.push({ variable, message })
    return fallback
  }

  const port = ((): number => {
    const raw = get('PORT')
    if (raw === undefined) return 8080
    if (!/^\d+$/.test(raw) || Number(raw) > 65535) {
      return fail('PORT', `must be a port number from 0 to 65535, got "${raw}"`, 0)
    }
    return Number(raw)
  })()

  const host = get('HOST') ?? '127.0.0.1'
  if (/\s/.test(host)) fail('HOST', `must be a host name or IP address, got "${host}"`, '')

  const resolve = (p: string, base: string) => path.resolve(base, p)
  const appDir = resolve(get('APP_DIR') ?? defaults.appDir, defaults.cwd)
  const dataDir = resolve(get('DATA_DIR') ?? path.join(appDir, 'data'), defaults.cwd)
  const backupDir = resolve(get('BACKUP_DIR') ?? path.join(appDir, 'backups'), defaults.cwd)

  const githubApiUrl = ((): string => {
    const raw = get('GITHUB_API_URL') ?? 'https://api.github.com'
    let url: URL
    try {
      url = new URL(raw)
    } catch {
      return fail('GITHUB_API_URL', `must be an http(s) URL such as https://api.github.com, got "${raw}"`, '')
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      return fail('GITHUB_API_URL', `must use http or https, got "${url.protocol}"`, '')
    }
    return raw.replace(/\/+$/, '')
  })()

  const updateCheckDisabled = ((): boolean => {
    const raw = get('UPDATE_CHECK_DISABLED')?.toLowerCase()
    if (raw === undefined || FALSE.includes(raw)) return false
    if (TRUE.includes(raw)) return true
    return fail('UPDATE_CHECK_DISABLED', `must be true or false, got "${raw}"`, false)
  })()

  const serviceManager = ((): ServiceManagerKind => {
    const raw = get('UPKEEP_SERVICE_MANAGER')
    // systemd sets INVOCATION_ID for every process it starts as a unit.
    if (raw === undefined) return get('INVOCATION_ID') ? 'systemd' : 'process'
    if (raw === 'systemd' || raw === 'process') return raw
    return fail('UPKEEP_SERVICE_MANAGER', `must be "systemd" or "process", got "${raw}"`, 'process')
  })()

  const logLevel = ((): LogLevel => {
    const raw = get('LOG_LEVEL')?.toLowerCase() ?? 'info'
    if ((LOG_LEVELS as string[]).includes(raw)) return raw as LogLevel
    return fail('LOG_LEVEL', `must be one of ${LOG_LEVELS.join(', ')}, got "${raw}"`, 'info')
  })()

  // Under systemd the apps' state lives in a directory of root's (each app's own inside it is
  // its user's), never under a directory the server can write; without systemd everything runs
  // as one user and stays in the data dir.
  const stateDir = resolve(get('UPKEEP_STATE_DIR') ?? (serviceManager === 'systemd' ? '/var/lib/upkeep-apps' : path.join(dataDir, 'state')), defaults.cwd)
  const appsDir = resolve(get('UPKEEP_APPS_DIR') ?? '/etc/upkeep/apps', defaults.cwd)

  const updateRepo = get('UPDATE_REPO')
  if (updateRepo !== undefined) {
    const problem = repoProblem(updateRepo)
    // JSON.stringify: the value may hold shell metacharacters or control characters.
    if (problem) fail('UPDATE_REPO', `must be a GitHub repository owner/name, got ${JSON.stringify(updateRepo)}: ${problem} (${REPO_HINT})`, undefined)
  }

  const artifactsUrl = get('UPKEEP_ARTIFACTS_URL')
  if (artifactsUrl !== undefined) {
    const problem = artifactUrlProblem(artifactsUrl)
    if (problem) fail('UPKEEP_ARTIFACTS_URL', `${problem}, e.g. https://downloads.example.com/upkeep/{tag}/upkeep-{version}.tar.gz`, undefined)
  }

  const count = (variable: string, fallback: number, min: number, what: string): number => {
    const raw = get(variable)
    if (raw === undefined) return fallback
    if (!/^\d+$/.test(raw) || Number(raw) < min) return fail(variable, `must be ${what}, at least ${min}, got "${raw}"`, fallback)
    return Number(raw)
  }
  const healthTimeoutMs = count('UPKEEP_HEALTH_TIMEOUT', 60, 1, 'seconds') * 1000
  const backupKeep = count('UPKEEP_BACKUP_KEEP', 5, 1, 'a number of backups')
  const staleAfterMs = count('UPKEEP_STALE_AFTER', 1800, 60, 'seconds') * 1000
  // Off by default for Upkeep itself: its updates end right after the health check, as they always did.
  const soakMs = count('UPKEEP_SOAK', 0, 0, 'seconds') * 1000

  // Not trimmed: spaces may be part of a password.
  const adminPassword = env.UPKEEP_ADMIN_PASSWORD || undefined
  if (adminPassword !== undefined && adminPassword.length < MIN_PASSWORD_LENGTH) {
    fail('UPKEEP_ADMIN_PASSWORD', `must be at least ${MIN_PASSWORD_LENGTH} characters long`, undefined)
  }

  const allowedHosts = parseAllowedHosts(get('UPKEEP_ALLOWED_HOSTS'), (message) => fail('UPKEEP_ALLOWED_HOSTS', message, undefined))

  if (problems.length) throw new ConfigError(problems)
  return {
    port,
    host,
    appDir,
    dataDir,
    backupDir,
    updateRepo,
    artifactsUrl,
    githubToken: get('GITHUB_TOKEN'),
    adminPassword,
    githubApiUrl,
    updateCheckDisabled,
    serviceManager,
    logLevel,
    stateDir,
    appsDir,
    healthTimeoutMs,
    backupKeep,
    staleAfterMs,
    allowedHosts,
    soakMs,
  }
}

const HOST_NAME_RE = /^(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$/
const BRACKETED_IPV6_RE = /^\[[0-9a-f:.]+\]$/

/** `upkeep.example.com, Upkeep.LAN.` → `['upkeep.example.com', 'upkeep.lan']`; `*` alone: any host. */
function parseAllowedHosts(raw: string | undefined, fail: (message: string) => void): readonly string[] | '*' {
  if (raw === undefined) return []
  const entries = raw.split(',').map((e) => e.trim().toLowerCase().replace(/\.$/, '')).filter(Boolean)
  if (entries.includes('*')) {
    if (entries.length > 1) fail(`"*" (any host) stands alone, got ${JSON.stringify(raw)}`)
    return '*'
  }
  const bad = entries.filter((e) => !HOST_NAME_RE.test(e) && !BRACKETED_IPV6_RE.test(e))
  if (bad.length) fail(`must be host names separated by commas, without scheme or port (e.g. upkeep.example.com,upkeep.lan), or *; got ${bad.map((b) => JSON.stringify(b)).join(', ')}`)
  return entries
}
