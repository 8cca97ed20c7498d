import { UpdateError } from './shared/errors'

/**
 * `upkeep.json` at the app's repository root (optional): how the updater builds and starts a
 * release of that app. The target version's own file is used for its build.
 *
 * ```json
 * { "buildCommands": [["npm", "ci"], ["npm", "run", "build", "--", "--out", "{out}"]],
 *   "outDir": "{out}", "serverEntry": "server.mjs", "healthPath": "/api/health" }
 * ```
 * Commands are argv arrays run without a shell, in the staging checkout, as the checkout's
 * owner. `{out}` stands for a directory the updater chooses; `outDir` is where the built
 * release is afterwards (`{out}`, or a path inside the checkout such as `dist`).
 */
export interface AppConfig {
  buildCommands: string[][]
  outDir: string
  serverEntry: string
  healthPath: string
}

export const DEFAULT_APP_CONFIG: AppConfig = {
  buildCommands: [
    ['npm', 'ci', '--no-audit', '--no-fund'],
    ['npm', 'run', 'build', '--', '--out', '{out}'],
  ],
  outDir: '{out}',
  serverEntry: 'server.mjs',
  healthPath: '/api/health',
}

const KEYS = ['buildCommands', 'outDir', 'serverEntry', 'healthPath']

/** A relative path that stays inside its directory. */
function isInsidePath(p: string): boolean {
  return p.length > 0 && !p.startsWith('/') && !p.split('/').includes('..') && !p.includes('\0')
}

/** Validates upkeep.json's content (undefined: no file) and fills in defaults. Pure. */
export function parseAppConfig(value: unknown, source = 'upkeep.json'): AppConfig {
  if (value === undefined) return DEFAULT_APP_CONFIG
  const fail = (msg: string): never => {
    throw new UpdateError('BAD_CONFIG', `${source}: ${msg}`, { step: 'build', hint: 'Fix upkeep.json in the release (see README "upkeep.json").' })
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return fail('must be a JSON object')
  const v = value as Record<string, unknown>
  for (const k of Object.keys(v)) if (!KEYS.includes(k)) fail(`unknown key "${k}" (known: ${KEYS.join(', ')})`)
  const config = { ...DEFAULT_APP_CONFIG }
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

/** Replaces `{out}` in every argument. */
export function expandCommand(argv: string[], out: string): string[] {
  return argv.map((a) => a.replaceAll('{out}', out))
}
