import path from 'node:path'
import { artifactUrlProblem, ARTIFACT_URL_EXAMPLE } from '../artifact-url'
import { UpdateError } from '../errors'
import { repoProblem } from '../repo'

/**
 * An app definition: everything Upkeep needs to update one app, as data (validated, versioned).
 * It lives in `/etc/upkeep/apps/<name>.json` (root's, so the server cannot change which units root
 * restarts or which user a build runs as); Upkeep's own is built in (builtin.ts). Fields may be
 * added in later schema versions; none is renamed.
 */
export interface AppDefinition {
  schema: 1
  /** `[a-z][a-z0-9-]*`, at most 32 characters; names its state, its requests and its routes. */
  name: string
  /** Absolute path of the git checkout. */
  checkout: string
  /** The user the app runs and builds as; undefined: the checkout's owner. */
  user: string | undefined
  source: SourceDefinition
  build: BuildDefinition
  run: RunDefinition
  health: HealthDefinition
  data: DataDefinition
  /** Prebuilt, signed releases: when set, an update installs the release's artifact instead of building it. */
  artifacts?: ArtifactsDefinition
  /** Source builds refuse a tag that is not signed by a key pinned for the app (`git verify-tag`). */
  requireSignedTags?: boolean
  /** A source build's dependency install, kept apart from the build so it can be reused. */
  dependencies?: DependenciesDefinition
}

/**
 * Where the app's signed release artifacts are (README "Verified releases"): the assets of the
 * GitHub release of the tag, or an https URL pattern of the tarball with `{version}`/`{tag}` in
 * it; SHA256SUMS and SHA256SUMS.sig beside it, signed by a key pinned for the app.
 */
export interface ArtifactsDefinition {
  source: { kind: 'github'; repo: string } | { kind: 'url'; pattern: string }
  /** The tarball's size limit; undefined: the updater's default (512 MiB). */
  maxDownloadBytes: number | undefined
  /** The unpacked files' size limit; undefined: the updater's default (2 GiB). */
  maxUnpackedBytes: number | undefined
  /** `GITHUB_TOKEN`: Upkeep's own token reaches this app's update (private repositories). */
  token: 'GITHUB_TOKEN' | undefined
}

export interface DependenciesDefinition {
  /** Files whose bytes decide whether installed dependencies can be reused, e.g. ["package-lock.json"]. */
  lockfiles: string[]
  /** What the install creates, e.g. ["node_modules"]. */
  dirs: string[]
  /** The install command (an argv), run before the build commands unless the dependencies were reused. */
  install: string[]
}

/** Where releases are listed: GitHub Releases of a repository, or the `v*` tags of a git remote of the checkout. */
export type SourceDefinition = { kind: 'github'; repo: string } | { kind: 'git'; remote: string }

export interface BuildDefinition {
  /** Argv lists run in order, without a shell, in the staging checkout. Undefined: the release's upkeep.json decides. */
  commands: string[][] | undefined
  /**
   * `releases`: the build output moves to `.upkeep/releases/<tag>` and the `current` symlink points
   * at it (Capistrano's layout). `in-place`: the app runs from the checkout itself; what the build
   * creates beside the tracked files (node_modules, dist…) is swapped in at the switch.
   */
  layout: 'releases' | 'in-place'
  /** `releases` only: where the finished build is: `{out}` (a directory the updater chooses), `.` (the built checkout itself, without .git) or a path inside it. */
  output: string
  /** Added to the build's clean environment. */
  env: Record<string, string>
  timeoutMs: number
  /**
   * Entries of the running build copied into the staging checkout before the build commands
   * (`node_modules`: npm then only changes what changed instead of installing and compiling all
   * again). A copy: the running build never shares a file with the new one.
   */
  seed: string[]
}

export interface RunDefinition {
  /** systemd units restarted in this order (and stopped in reverse). */
  units: string[]
  /** Socket units that hold the units' listening sockets: kept open across a restart, stopped with the units. */
  sockets: string[]
  /** Without systemd: how the app is started (detached, tracked by a pidfile). */
  command: { argv: string[]; env: Record<string, string>; cwd: string | undefined } | undefined
}

/** How the new version is recognised in the health answer; `none`: any expected answer after the restart. */
export type VersionProbe = { kind: 'json-pointer'; pointer: string } | { kind: 'regex'; pattern: string } | { kind: 'header'; name: string } | { kind: 'none' }

export interface HealthDefinition {
  url: string
  expectStatus: number
  version: VersionProbe
  timeoutMs: number
  intervalMs: number
  /**
   * After the health check passes, the new version is watched this long (the soak): a crash, a
   * restart or failing health checks roll it back; the update commits only after it. 0: no soak.
   */
  soakMs: number
}

export interface DataDefinition {
  /** Absolute paths of the app's data (files or directories), backed up before every update. */
  paths: string[]
  /** Relative paths inside a data path (a trailing `/` for a directory) that are not backed up. */
  exclude: string[]
  /** Backups kept, newest first. */
  keep: number
  /** Where backups go; undefined: the app's state directory. */
  backupDir: string | undefined
}

export const SCHEMA = 1
/** How long a new version is watched after its health check passed, unless the definition says otherwise. */
export const DEFAULT_SOAK_SECONDS = 120
export const APP_NAME_RE = /^[a-z][a-z0-9-]{0,31}$/
const USER_RE = /^[a-z_][a-z0-9_-]{0,31}$/
const UNIT_RE = /^[A-Za-z0-9@._:-]{1,240}\.service$/
const SOCKET_RE = /^[A-Za-z0-9@._:-]{1,240}\.socket$/
const ENV_KEY_RE = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/
const HEADER_RE = /^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$/
const REMOTE_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/

const KEYS = {
  top: ['schema', 'name', 'checkout', 'user', 'source', 'build', 'run', 'health', 'data', 'artifacts', 'requireSignedTags', 'dependencies'],
  artifacts: ['github', 'url', 'maxDownloadBytes', 'maxUnpackedBytes', 'token'],
  dependencies: ['lockfiles', 'dirs', 'install'],
  source: ['github', 'git'],
  build: ['commands', 'layout', 'output', 'env', 'timeoutSeconds', 'seed'],
  run: ['units', 'sockets', 'command'],
  command: ['argv', 'env', 'cwd'],
  health: ['url', 'expectStatus', 'version', 'timeoutSeconds', 'intervalMs', 'soakSeconds'],
  version: ['jsonPointer', 'regex', 'header'],
  data: ['paths', 'exclude', 'keep', 'backupDir'],
} as const

type Obj = Record<string, unknown>

/** Collects every problem of a definition, so the operator fixes them in one go. */
class Problems {
  readonly list: string[] = []
  add(where: string, message: string): undefined {
    this.list.push(`${where}: ${message}`)
    return undefined
  }
}

function isObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function checkKeys(p: Problems, where: string, v: Obj, allowed: readonly string[]): void {
  for (const k of Object.keys(v)) if (!allowed.includes(k)) p.add(where, `unknown key ${JSON.stringify(k.slice(0, 40))} (known: ${allowed.join(', ')})`)
}

/** A normalised absolute path that is not `/` and has no `..`. */
function absolutePath(p: Problems, where: string, v: unknown): string | undefined {
  if (typeof v !== 'string' || !v.startsWith('/') || v.includes('\0')) return p.add(where, `must be an absolute path, got ${JSON.stringify(v)}`)
  if (v.split('/').includes('..')) return p.add(where, 'must not contain ".."')
  const norm = path.normalize(v).replace(/\/+$/, '')
  if (!norm || norm === '/') return p.add(where, 'must not be /')
  return norm
}

/** A relative path that stays inside its directory. */
export function isInsidePath(v: string): boolean {
  return v.length > 0 && !v.startsWith('/') && !v.split('/').includes('..') && !v.includes('\0')
}

function seconds(p: Problems, where: string, v: unknown, fallback: number, min: number, max: number): number {
  if (v === undefined) return fallback * 1000
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) return p.add(where, `must be a number of seconds from ${min} to ${max}`) ?? fallback * 1000
  return Math.round(v * 1000)
}

function argvList(p: Problems, where: string, v: unknown): string[] | undefined {
  if (!Array.isArray(v) || v.length === 0 || !v.every((a) => typeof a === 'string' && !a.includes('\0')) || !v[0]) {
    return p.add(where, 'must be a non-empty list of strings (an argv, run without a shell), e.g. ["npm", "ci"]')
  }
  return v as string[]
}

function envMap(p: Problems, where: string, v: unknown): Record<string, string> {
  if (v === undefined) return {}
  if (!isObject(v)) return p.add(where, 'must be an object of NAME: "value"') ?? {}
  const out: Record<string, string> = {}
  for (const [k, val] of Object.entries(v)) {
    if (!ENV_KEY_RE.test(k)) p.add(where, `${JSON.stringify(k.slice(0, 40))} is not a variable name`)
    else if (typeof val !== 'string' || val.includes('\0')) p.add(`${where}.${k}`, 'must be a string')
    else out[k] = val
  }
  return out
}

function parseSource(p: Problems, v: unknown): SourceDefinition {
  if (v === undefined) return { kind: 'git', remote: 'origin' }
  if (!isObject(v)) return p.add('source', 'must be {"github": "owner/name"} or {"git": "origin"}') ?? { kind: 'git', remote: 'origin' }
  checkKeys(p, 'source', v, KEYS.source)
  if (v.github !== undefined && v.git !== undefined) p.add('source', 'give either "github" or "git", not both')
  if (v.github !== undefined) {
    const problem = typeof v.github === 'string' ? repoProblem(v.github) : 'must be a string'
    if (problem) p.add('source.github', `must be a GitHub repository owner/name: ${problem}`)
    return { kind: 'github', repo: String(v.github) }
  }
  if (v.git !== undefined && (typeof v.git !== 'string' || !REMOTE_RE.test(v.git))) p.add('source.git', 'must name a git remote of the checkout, e.g. "origin"')
  return { kind: 'git', remote: typeof v.git === 'string' ? v.git : 'origin' }
}

function parseBuild(p: Problems, v: unknown): BuildDefinition {
  const b: Obj = v === undefined ? {} : isObject(v) ? v : (p.add('build', 'must be an object'), {})
  checkKeys(p, 'build', b, KEYS.build)
  let commands: string[][] | undefined
  if (b.commands !== undefined) {
    if (!Array.isArray(b.commands)) p.add('build.commands', 'must be a list of argv lists, e.g. [["npm", "ci"], ["npm", "run", "build"]]')
    else commands = b.commands.map((c, i) => argvList(p, `build.commands[${i}]`, c) ?? [])
  }
  const layout = b.layout ?? 'releases'
  if (layout !== 'releases' && layout !== 'in-place') p.add('build.layout', `must be "releases" or "in-place", got ${JSON.stringify(layout)}`)
  const output = b.output ?? '{out}'
  if (typeof output !== 'string' || (output !== '{out}' && output !== '.' && !isInsidePath(output))) p.add('build.output', 'must be "{out}", "." (the whole built checkout) or a relative path inside the checkout, e.g. "dist"')
  if (layout === 'in-place' && b.output !== undefined) p.add('build.output', 'is for the "releases" layout only: an in-place build stays in the checkout')
  return {
    commands,
    layout: layout === 'in-place' ? 'in-place' : 'releases',
    output: typeof output === 'string' ? output : '{out}',
    env: envMap(p, 'build.env', b.env),
    timeoutMs: seconds(p, 'build.timeoutSeconds', b.timeoutSeconds, 1800, 1, 86_400),
    seed: parseSeed(p, b.seed),
  }
}

function parseSeed(p: Problems, v: unknown): string[] {
  if (v === undefined) return []
  if (!Array.isArray(v) || !v.every((n) => typeof n === 'string' && /^[^/\0]+$/.test(n) && n !== '.' && n !== '..' && n !== '.git')) {
    return p.add('build.seed', 'must be a list of names of entries at the top of the build, e.g. ["node_modules"]') ?? []
  }
  return v as string[]
}

function parseRun(p: Problems, v: unknown): RunDefinition {
  const r: Obj = v === undefined ? {} : isObject(v) ? v : (p.add('run', 'must be an object'), {})
  checkKeys(p, 'run', r, KEYS.run)
  const names = (key: 'units' | 'sockets', re: RegExp, example: string): string[] => {
    const list = r[key]
    if (list === undefined) return []
    if (!Array.isArray(list) || !list.every((u) => typeof u === 'string' && re.test(u))) return p.add(`run.${key}`, `must be a list of unit names such as "${example}"`) ?? []
    if (new Set(list).size !== list.length) p.add(`run.${key}`, 'names a unit twice')
    return list as string[]
  }
  const units = names('units', UNIT_RE, 'myapp.service')
  const sockets = names('sockets', SOCKET_RE, 'myapp.socket')
  let command: RunDefinition['command']
  if (r.command !== undefined) {
    if (!isObject(r.command)) p.add('run.command', 'must be {"argv": [...], "env": {...}, "cwd": "..."}')
    else {
      checkKeys(p, 'run.command', r.command, KEYS.command)
      const cwd = r.command.cwd
      if (cwd !== undefined && (typeof cwd !== 'string' || !(cwd.startsWith('/') ? absolutePath(p, 'run.command.cwd', cwd) : isInsidePath(cwd) || cwd === '.'))) {
        p.add('run.command.cwd', 'must be a path inside the checkout or an absolute path')
      }
      command = { argv: argvList(p, 'run.command.argv', r.command.argv) ?? [], env: envMap(p, 'run.command.env', r.command.env), cwd: typeof cwd === 'string' ? cwd : undefined }
    }
  }
  if (!units.length && !command) p.add('run', 'say how the app runs: "units" (systemd) and/or "command" (without systemd)')
  if (sockets.length && !units.length) p.add('run.sockets', 'needs the units they activate in "units"')
  return { units, sockets, command }
}

/** RFC 6901: `/a/b~1c`; the empty pointer means the whole body. */
function isJsonPointer(v: string): boolean {
  return v === '' || (v.startsWith('/') && !/~[^01]/.test(v) && !v.endsWith('~'))
}

function parseHealth(p: Problems, v: unknown): HealthDefinition {
  const h: Obj = isObject(v) ? v : (p.add('health', 'must be an object with at least "url"'), {})
  checkKeys(p, 'health', h, KEYS.health)
  let url = ''
  try {
    const u = new URL(String(h.url))
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('protocol')
    if (u.username || u.password) p.add('health.url', 'must not hold a user or password')
    url = u.href
  } catch {
    p.add('health.url', `must be an http(s) URL such as "http://127.0.0.1:3000/health", got ${JSON.stringify(h.url)}`)
  }
  const expectStatus = h.expectStatus ?? 200
  if (typeof expectStatus !== 'number' || !Number.isInteger(expectStatus) || expectStatus < 100 || expectStatus > 599) p.add('health.expectStatus', 'must be an HTTP status such as 200')
  let version: VersionProbe = { kind: 'none' }
  if (h.version !== undefined && h.version !== null) {
    const vv = h.version
    if (!isObject(vv) || Object.keys(vv).length !== 1) p.add('health.version', 'must be null, {"jsonPointer": "/version"}, {"regex": "version (\\\\S+)"} or {"header": "x-app-version"}')
    else {
      checkKeys(p, 'health.version', vv, KEYS.version)
      if (vv.jsonPointer !== undefined) {
        if (typeof vv.jsonPointer !== 'string' || !isJsonPointer(vv.jsonPointer)) p.add('health.version.jsonPointer', 'must be a JSON pointer such as "/version" or "/build/version"')
        else version = { kind: 'json-pointer', pointer: vv.jsonPointer }
      } else if (vv.regex !== undefined) {
        try {
          if (typeof vv.regex !== 'string' || vv.regex.length > 200) throw new Error('length')
          new RegExp(vv.regex)
          version = { kind: 'regex', pattern: vv.regex }
        } catch {
          p.add('health.version.regex', 'must be a regular expression of at most 200 characters; its first group (or the whole match) is the version')
        }
      } else if (vv.header !== undefined) {
        if (typeof vv.header !== 'string' || !HEADER_RE.test(vv.header)) p.add('health.version.header', 'must be an HTTP header name')
        else version = { kind: 'header', name: vv.header.toLowerCase() }
      }
    }
  }
  const intervalMs = h.intervalMs ?? 250
  if (typeof intervalMs !== 'number' || !Number.isInteger(intervalMs) || intervalMs < 50 || intervalMs > 60_000) p.add('health.intervalMs', 'must be milliseconds from 50 to 60000')
  return {
    url,
    expectStatus: typeof expectStatus === 'number' ? expectStatus : 200,
    version,
    timeoutMs: seconds(p, 'health.timeoutSeconds', h.timeoutSeconds, 60, 1, 3600),
    intervalMs: typeof intervalMs === 'number' ? intervalMs : 250,
    soakMs: seconds(p, 'health.soakSeconds', h.soakSeconds, DEFAULT_SOAK_SECONDS, 0, 86_400),
  }
}

function parseData(p: Problems, v: unknown, checkout: string | undefined): DataDefinition {
  const d: Obj = v === undefined ? {} : isObject(v) ? v : (p.add('data', 'must be an object'), {})
  checkKeys(p, 'data', d, KEYS.data)
  const paths: string[] = []
  if (d.paths !== undefined) {
    if (!Array.isArray(d.paths)) p.add('data.paths', 'must be a list of paths (inside the checkout, or absolute)')
    else {
      for (const [i, raw] of d.paths.entries()) {
        const where = `data.paths[${i}]`
        if (typeof raw !== 'string') {
          p.add(where, 'must be a string')
          continue
        }
        const abs = raw.startsWith('/') ? absolutePath(p, where, raw) : isInsidePath(raw) && checkout ? path.join(checkout, raw) : p.add(where, 'must be a relative path inside the checkout or an absolute path')
        if (abs && checkout && abs === checkout) p.add(where, 'must not be the whole checkout')
        else if (abs) paths.push(abs)
      }
    }
  }
  const exclude: string[] = []
  if (d.exclude !== undefined) {
    if (!Array.isArray(d.exclude) || !d.exclude.every((e) => typeof e === 'string' && isInsidePath(e.replace(/\/$/, '')))) p.add('data.exclude', 'must be a list of relative paths inside a data path, e.g. ["cache/", "tmp.log"]')
    else exclude.push(...(d.exclude as string[]))
  }
  const keep = d.keep ?? 5
  if (typeof keep !== 'number' || !Number.isInteger(keep) || keep < 1 || keep > 1000) p.add('data.keep', 'must be a number of backups from 1 to 1000')
  const backupDir = d.backupDir === undefined ? undefined : absolutePath(p, 'data.backupDir', d.backupDir)
  return { paths, exclude, keep: typeof keep === 'number' ? keep : 5, backupDir }
}

function byteLimit(p: Problems, where: string, v: unknown): number | undefined {
  if (v === undefined) return undefined
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1024) return p.add(where, 'must be a number of bytes, at least 1024')
  return v
}

function parseArtifacts(p: Problems, v: unknown, layout: BuildDefinition['layout']): ArtifactsDefinition | undefined {
  if (v === undefined) return undefined
  if (!isObject(v)) return p.add('artifacts', `must be {"github": "owner/name"} or {"url": "${ARTIFACT_URL_EXAMPLE}"}`)
  checkKeys(p, 'artifacts', v, KEYS.artifacts)
  let source: ArtifactsDefinition['source'] = { kind: 'url', pattern: '' }
  if ((v.github === undefined) === (v.url === undefined)) p.add('artifacts', 'give exactly one of "github" or "url"')
  else if (v.github !== undefined) {
    const problem = typeof v.github === 'string' ? repoProblem(v.github) : 'must be a string'
    if (problem) p.add('artifacts.github', `must be a GitHub repository owner/name: ${problem}`)
    source = { kind: 'github', repo: String(v.github) }
  } else {
    const problem = artifactUrlProblem(v.url)
    if (problem) p.add('artifacts.url', `${problem} (e.g. "${ARTIFACT_URL_EXAMPLE}")`)
    source = { kind: 'url', pattern: String(v.url) }
  }
  if (v.token !== undefined && v.token !== 'GITHUB_TOKEN') p.add('artifacts.token', 'must be "GITHUB_TOKEN" (Upkeep\'s own token, from its environment)')
  if (v.token !== undefined && source.kind !== 'github') p.add('artifacts.token', 'is for GitHub release assets ("github") only')
  // An artifact is a whole release: it has a directory of its own, which only the releases layout gives it.
  if (layout === 'in-place') p.add('artifacts', 'need the "releases" layout: an in-place app is built in its checkout')
  return {
    source,
    maxDownloadBytes: byteLimit(p, 'artifacts.maxDownloadBytes', v.maxDownloadBytes),
    maxUnpackedBytes: byteLimit(p, 'artifacts.maxUnpackedBytes', v.maxUnpackedBytes),
    token: v.token === 'GITHUB_TOKEN' ? 'GITHUB_TOKEN' : undefined,
  }
}

function parseDependencies(p: Problems, v: unknown): DependenciesDefinition | undefined {
  if (v === undefined) return undefined
  if (!isObject(v)) return p.add('dependencies', 'must be {"lockfiles": ["package-lock.json"], "dirs": ["node_modules"], "install": ["npm", "ci"]}')
  checkKeys(p, 'dependencies', v, KEYS.dependencies)
  const names = (key: 'lockfiles' | 'dirs', example: string): string[] => {
    const list = v[key]
    // Plain names at the checkout's top level: they are compared and copied there.
    const plain = (n: unknown) => typeof n === 'string' && isInsidePath(n) && !n.includes('/') && n !== '.' && n !== '.git' && n !== '.upkeep'
    if (!Array.isArray(list) || list.length === 0 || !list.every(plain)) return p.add(`dependencies.${key}`, `must be a non-empty list of names at the checkout's top level, e.g. ["${example}"]`) ?? []
    return list as string[]
  }
  return {
    lockfiles: names('lockfiles', 'package-lock.json'),
    dirs: names('dirs', 'node_modules'),
    install: argvList(p, 'dependencies.install', v.install) ?? [],
  }
}

/**
 * Validates a definition (the parsed JSON) and fills in defaults. Pure. Throws BAD_CONFIG naming
 * every problem; `source` names the file in messages.
 */
export function parseAppDefinition(value: unknown, source = 'app definition'): AppDefinition {
  const p = new Problems()
  if (!isObject(value)) throw new UpdateError('BAD_CONFIG', `${source}: must be a JSON object`)
  checkKeys(p, 'definition', value, KEYS.top)
  if (value.schema !== undefined && value.schema !== SCHEMA) p.add('schema', `this Upkeep reads schema ${SCHEMA}, the file says ${JSON.stringify(value.schema)}`)
  const name = typeof value.name === 'string' && APP_NAME_RE.test(value.name) ? value.name : (p.add('name', 'must be 1 to 32 of a-z, 0-9 and "-", starting with a letter'), '')
  const checkout = absolutePath(p, 'checkout', value.checkout)
  if (value.user !== undefined && (typeof value.user !== 'string' || !USER_RE.test(value.user))) p.add('user', 'must be a user name')
  if (value.user === 'root') p.add('user', 'apps never run or build as root')
  const build = parseBuild(p, value.build)
  if (value.requireSignedTags !== undefined && typeof value.requireSignedTags !== 'boolean') p.add('requireSignedTags', 'must be true or false')
  const def: AppDefinition = {
    schema: 1,
    name,
    checkout: checkout ?? '',
    user: typeof value.user === 'string' ? value.user : undefined,
    source: parseSource(p, value.source),
    build,
    run: parseRun(p, value.run),
    health: parseHealth(p, value.health),
    data: parseData(p, value.data, checkout),
    artifacts: parseArtifacts(p, value.artifacts, build.layout),
    requireSignedTags: value.requireSignedTags === true,
    dependencies: parseDependencies(p, value.dependencies),
  }
  if (p.list.length) {
    throw new UpdateError('BAD_CONFIG', `${source} is not valid:\n  ${p.list.join('\n  ')}`, { hint: 'Fix the file (README "App definition reference"), then run: upkeep app check ' + (name || 'NAME') })
  }
  return def
}

/** The JSON an operator would write for `def` (defaults left out): what `upkeep app add` saves. */
export function serializeAppDefinition(def: AppDefinition): Record<string, unknown> {
  const version = def.health.version
  return {
    schema: SCHEMA,
    name: def.name,
    checkout: def.checkout,
    ...(def.user ? { user: def.user } : {}),
    source: def.source.kind === 'github' ? { github: def.source.repo } : { git: def.source.remote },
    build: {
      ...(def.build.commands ? { commands: def.build.commands } : {}),
      layout: def.build.layout,
      ...(def.build.layout === 'releases' && def.build.output !== '{out}' ? { output: def.build.output } : {}),
      ...(Object.keys(def.build.env).length ? { env: def.build.env } : {}),
      timeoutSeconds: def.build.timeoutMs / 1000,
      ...(def.build.seed.length ? { seed: def.build.seed } : {}),
    },
    run: {
      ...(def.run.units.length ? { units: def.run.units } : {}),
      ...(def.run.sockets.length ? { sockets: def.run.sockets } : {}),
      ...(def.run.command ? { command: { argv: def.run.command.argv, ...(Object.keys(def.run.command.env).length ? { env: def.run.command.env } : {}), ...(def.run.command.cwd ? { cwd: def.run.command.cwd } : {}) } } : {}),
    },
    health: {
      url: def.health.url,
      ...(def.health.expectStatus !== 200 ? { expectStatus: def.health.expectStatus } : {}),
      version: version.kind === 'json-pointer' ? { jsonPointer: version.pointer } : version.kind === 'regex' ? { regex: version.pattern } : version.kind === 'header' ? { header: version.name } : null,
      timeoutSeconds: def.health.timeoutMs / 1000,
      ...(def.health.intervalMs !== 250 ? { intervalMs: def.health.intervalMs } : {}),
      soakSeconds: def.health.soakMs / 1000,
    },
    data: {
      paths: def.data.paths.map((p) => (p.startsWith(def.checkout + '/') ? path.relative(def.checkout, p) : p)),
      ...(def.data.exclude.length ? { exclude: def.data.exclude } : {}),
      keep: def.data.keep,
      ...(def.data.backupDir ? { backupDir: def.data.backupDir } : {}),
    },
    ...(def.artifacts ? { artifacts: serializeArtifacts(def.artifacts) } : {}),
    ...(def.requireSignedTags ? { requireSignedTags: true } : {}),
    ...(def.dependencies ? { dependencies: def.dependencies } : {}),
  }
}

function serializeArtifacts(a: ArtifactsDefinition): Record<string, unknown> {
  return {
    ...(a.source.kind === 'github' ? { github: a.source.repo } : { url: a.source.pattern }),
    ...(a.maxDownloadBytes !== undefined ? { maxDownloadBytes: a.maxDownloadBytes } : {}),
    ...(a.maxUnpackedBytes !== undefined ? { maxUnpackedBytes: a.maxUnpackedBytes } : {}),
    ...(a.token ? { token: a.token } : {}),
  }
}
