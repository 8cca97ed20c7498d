import type { AppDefinition } from './shared/apps/definition'
import { isInsidePath } from './shared/apps/definition'
import { UpdateError } from './shared/errors'
import { UPKEEP_APP } from './shared/paths'

/**
 * `upkeep.json` at a release's repository root (optional): how that release is built, as its
 * authors say. The app definition on the host wins where it says otherwise.
 *
 * ```json
 * { "buildCommands": [["npm", "ci"], ["npm", "run", "build", "--", "--out", "{out}"]],
 *   "outDir": "{out}", "serverEntry": "server.mjs", "healthPath": "/api/health" }
 * ```
 * Commands are argv arrays run without a shell, in the staging checkout, as the app's user.
 * `{out}` stands for a directory the updater chooses; `outDir` is where the built release is
 * afterwards (`{out}`, or a path inside the checkout such as `dist`).
 */
export interface RepoBuildConfig {
  buildCommands?: string[][]
  outDir?: string
  serverEntry?: string
  healthPath?: string
}

/** Upkeep's own build, when its release has no upkeep.json (its `npm ci` is its definition's dependency install). */
export const UPKEEP_BUILD = {
  commands: [['npm', 'run', 'build', '--', '--out', '{out}']],
  output: '{out}',
  serverEntry: 'server.mjs',
}

const KEYS = ['buildCommands', 'outDir', 'serverEntry', 'healthPath']

/** Validates upkeep.json's content (undefined: no file). Pure. */
export function parseRepoBuildConfig(value: unknown, source = 'upkeep.json'): RepoBuildConfig {
  if (value === undefined) return {}
  const fail = (msg: string): never => {
    throw new UpdateError('BAD_CONFIG', `${source}: ${msg}`, { step: 'build', hint: 'Fix upkeep.json in the release (see README "upkeep.json").' })
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return fail('must be a JSON object')
  const v = value as Record<string, unknown>
  for (const k of Object.keys(v)) if (!KEYS.includes(k)) fail(`unknown key "${k}" (known: ${KEYS.join(', ')})`)
  const config: RepoBuildConfig = {}
  if (v.buildCommands !== undefined) {
    const cmds = v.buildCommands
    if (!Array.isArray(cmds) || cmds.length === 0) return fail('buildCommands must be a non-empty list of commands')
    for (const c of cmds) {
      if (!Array.isArray(c) || c.length === 0 || !c.every((a) => typeof a === 'string') || !c[0]) fail('each build command must be a non-empty list of strings, e.g. ["npm", "ci"]')
    }
    config.buildCommands = cmds as string[][]
  }
  if (v.outDir !== undefined) {
    if (typeof v.outDir !== 'string' || (v.outDir !== '{out}' && !isInsidePath(v.outDir))) fail('outDir must be "{out}" or a relative path inside the repository')
    config.outDir = v.outDir as string
  }
  if (v.serverEntry !== undefined) {
    if (typeof v.serverEntry !== 'string' || !isInsidePath(v.serverEntry)) fail('serverEntry must be a relative path inside the build, e.g. "server.mjs"')
    config.serverEntry = v.serverEntry as string
  }
  if (v.healthPath !== undefined) {
    if (typeof v.healthPath !== 'string' || !/^\/[\x21-\x7e]*$/.test(v.healthPath)) fail('healthPath must be a URL path such as "/api/health"')
    config.healthPath = v.healthPath as string
  }
  return config
}

/** What a build of one release does: the host's definition first, then the release's upkeep.json. */
export interface BuildPlan {
  /** The dependency install (the definition's `dependencies.install`), skipped when installed dependencies are reused. */
  install?: string[]
  commands: string[][]
  /** `releases` layout: `{out}` or a path inside the checkout. */
  output: string
  /** A file the finished release must contain (Upkeep's own entry, or upkeep.json's). */
  serverEntry?: string
  healthPath?: string
}

/** Pure: the definition's build, with the release's upkeep.json filling what the host left open. */
export function planBuild(app: AppDefinition, repo: RepoBuildConfig): BuildPlan {
  const own = app.name === UPKEEP_APP
  const fromRelease = !app.build.commands && repo.buildCommands !== undefined
  // Upkeep's built-in install belongs to its built-in build: a release whose upkeep.json lists
  // build commands says the whole of how it is built, install included.
  const install = own && fromRelease ? undefined : app.dependencies?.install
  const listed = app.build.commands ?? repo.buildCommands ?? (own ? UPKEEP_BUILD.commands : [])
  // The install is its own step: the same command among the build commands would run it twice.
  const commands = install ? listed.filter((c) => !sameArgv(c, install)) : listed
  const output = app.build.output !== '{out}' ? app.build.output : (repo.outDir ?? '{out}')
  const serverEntry = repo.serverEntry ?? (own ? UPKEEP_BUILD.serverEntry : undefined)
  return { ...(install ? { install } : {}), commands, output, ...(serverEntry ? { serverEntry } : {}), ...(repo.healthPath ? { healthPath: repo.healthPath } : {}) }
}

function sameArgv(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i])
}

/** Replaces `{out}` in every argument. */
export function expandCommand(argv: string[], out: string): string[] {
  return argv.map((a) => a.replaceAll('{out}', out))
}
