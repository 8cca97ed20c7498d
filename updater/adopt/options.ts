import path from 'node:path'
import { APP_NAME_RE } from '../shared/apps/definition'
import { repoProblem } from '../shared/repo'
import { parseOptions, UsageError } from '../commands/common'

// `upkeep app add`'s command line, checked before anything is inspected: a wrong option is a
// usage error (exit 2) that names the option and shows what it takes.

/** `health.version` as the definition file spells it. */
export type VersionJson = null | { jsonPointer: string } | { regex: string } | { header: string }

export interface AddOptions {
  /** Absolute, normalised. */
  checkout: string
  name?: string
  user?: string
  units?: string[]
  sockets?: string[]
  healthUrl?: string
  /** Undefined: not said (found from the health answer); null: `none`. */
  healthVersion?: VersionJson
  /** `health.soakSeconds`: how long a new version is watched after its health check. */
  soakSeconds?: number
  layout?: 'releases' | 'in-place'
  buildCommands?: string[][]
  buildOutput?: string
  /** Absolute or relative to the checkout, as given. */
  data?: string[]
  github?: string
  dryRun: boolean
  yes: boolean
  json: boolean
}

export const VERSION_OPTION_HELP = 'none, json:/pointer, regex:RE or header:NAME'

/** `--health-version`: `none` | `json:/build/version` | `regex:version (\S+)` | `header:x-app-version`. Pure. */
export function parseVersionOption(value: string): VersionJson {
  if (value === 'none') return null
  const i = value.indexOf(':')
  const kind = i < 0 ? value : value.slice(0, i)
  const arg = i < 0 ? '' : value.slice(i + 1)
  switch (kind) {
    case 'json':
      if (i < 0 || (arg !== '' && !arg.startsWith('/'))) throw new UsageError(`--health-version json: takes a JSON pointer such as /version or /build/version, got ${JSON.stringify(arg)}`)
      return { jsonPointer: arg }
    case 'regex':
      try {
        if (!arg) throw new Error('empty')
        new RegExp(arg)
      } catch {
        throw new UsageError(`--health-version regex: takes a regular expression whose first group is the version, e.g. "version (\\S+)", got ${JSON.stringify(arg)}`)
      }
      return { regex: arg }
    case 'header':
      if (!/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$/.test(arg)) throw new UsageError(`--health-version header: takes an HTTP header name such as x-app-version, got ${JSON.stringify(arg)}`)
      return { header: arg.toLowerCase() }
    default:
      throw new UsageError(`--health-version takes ${VERSION_OPTION_HELP}, got ${JSON.stringify(value.slice(0, 60))}`)
  }
}

/** `--build-command '["npm","ci"]'`: a JSON list of strings (an argv, run without a shell). Pure. */
export function parseBuildCommand(value: string): string[] {
  let argv: unknown
  try {
    argv = JSON.parse(value)
  } catch {
    argv = undefined
  }
  if (!Array.isArray(argv) || argv.length === 0 || !argv.every((a) => typeof a === 'string' && !a.includes('\0')) || !argv[0]) {
    throw new UsageError(`--build-command takes a JSON list of strings (run without a shell), e.g. '["npm","ci"]', got ${JSON.stringify(value.slice(0, 60))}`)
  }
  return argv as string[]
}

const ADD_OPTIONS = {
  name: { type: 'string' },
  user: { type: 'string' },
  unit: { type: 'string', multiple: true },
  socket: { type: 'string', multiple: true },
  'health-url': { type: 'string' },
  'health-version': { type: 'string' },
  soak: { type: 'string' },
  layout: { type: 'string' },
  'build-command': { type: 'string', multiple: true },
  'build-output': { type: 'string' },
  data: { type: 'string', multiple: true },
  github: { type: 'string' },
  'dry-run': { type: 'boolean' },
  yes: { type: 'boolean', short: 'y' },
  json: { type: 'boolean' },
} as const

/** `upkeep app add CHECKOUT [options]` → what was said; `cwd` resolves a relative CHECKOUT. Pure. */
export function parseAddOptions(args: string[], cwd: string): AddOptions {
  const { values: v, positionals } = parseOptions(args, ADD_OPTIONS, true)
  if (positionals.length !== 1) throw new UsageError(positionals.length ? `one checkout only, got ${positionals.length}` : 'name the checkout: upkeep app add /srv/myapp')
  const raw = positionals[0]!
  if (raw.includes('\0')) throw new UsageError('the checkout path holds a NUL byte')
  const checkout = path.resolve(cwd, raw).replace(/\/+$/, '') || '/'
  if (checkout === '/') throw new UsageError('the checkout cannot be /')
  if (v.name !== undefined && !APP_NAME_RE.test(v.name)) throw new UsageError(`--name takes 1 to 32 of a-z, 0-9 and "-", starting with a letter, got ${JSON.stringify(v.name.slice(0, 40))}`)
  if (v.name === 'upkeep') throw new UsageError('--name upkeep is Upkeep itself; give the app another name')
  if (v.user !== undefined && !/^[a-z_][a-z0-9_-]{0,31}$/.test(v.user)) throw new UsageError(`--user takes a user name, got ${JSON.stringify(v.user.slice(0, 40))}`)
  if (v.user === 'root') throw new UsageError('--user root: apps never run or build as root')
  for (const u of v.unit ?? []) if (!/^[A-Za-z0-9@._:-]{1,240}\.service$/.test(u)) throw new UsageError(`--unit takes a service unit name such as myapp.service, got ${JSON.stringify(u.slice(0, 60))}`)
  for (const s of v.socket ?? []) if (!/^[A-Za-z0-9@._:-]{1,240}\.socket$/.test(s)) throw new UsageError(`--socket takes a socket unit name such as myapp.socket, got ${JSON.stringify(s.slice(0, 60))}`)
  if (v['health-url'] !== undefined) {
    let ok = false
    try {
      const u = new URL(v['health-url'])
      ok = (u.protocol === 'http:' || u.protocol === 'https:') && !u.username && !u.password
    } catch {
      ok = false
    }
    if (!ok) throw new UsageError(`--health-url takes an http(s) URL such as http://127.0.0.1:3000/health, got ${JSON.stringify(v['health-url'].slice(0, 80))}`)
  }
  if (v.soak !== undefined && !(/^\d{1,5}$/.test(v.soak) && Number(v.soak) <= 86_400)) throw new UsageError(`--soak takes a number of seconds from 0 to 86400, got ${JSON.stringify(v.soak.slice(0, 40))}`)
  if (v.layout !== undefined && v.layout !== 'releases' && v.layout !== 'in-place') throw new UsageError(`--layout takes releases or in-place, got ${JSON.stringify(v.layout.slice(0, 40))}`)
  if (v['build-output'] !== undefined && v['build-output'] !== '{out}' && (v['build-output'].startsWith('/') || v['build-output'].split('/').includes('..') || !v['build-output'])) {
    throw new UsageError('--build-output takes {out} or a path inside the checkout, e.g. dist')
  }
  if (v.github !== undefined) {
    const problem = repoProblem(v.github)
    if (problem) throw new UsageError(`--github takes a GitHub repository owner/name: ${problem}`)
  }
  for (const d of v.data ?? []) if (!d || d.includes('\0') || d.split('/').includes('..')) throw new UsageError(`--data takes a path (absolute, or inside the checkout) without "..", got ${JSON.stringify(d.slice(0, 80))}`)
  const dryRun = v['dry-run'] === true
  if (dryRun && v.yes) throw new UsageError('--dry-run changes nothing; --yes has nothing to confirm')
  return {
    checkout,
    ...(v.name !== undefined ? { name: v.name } : {}),
    ...(v.user !== undefined ? { user: v.user } : {}),
    ...(v.unit ? { units: [...new Set(v.unit)] } : {}),
    ...(v.socket ? { sockets: [...new Set(v.socket)] } : {}),
    ...(v['health-url'] !== undefined ? { healthUrl: new URL(v['health-url']).href } : {}),
    ...(v['health-version'] !== undefined ? { healthVersion: parseVersionOption(v['health-version']) } : {}),
    ...(v.soak !== undefined ? { soakSeconds: Number(v.soak) } : {}),
    ...(v.layout !== undefined ? { layout: v.layout as 'releases' | 'in-place' } : {}),
    ...(v['build-command'] ? { buildCommands: v['build-command'].map(parseBuildCommand) } : {}),
    ...(v['build-output'] !== undefined ? { buildOutput: v['build-output'] } : {}),
    ...(v.data ? { data: v.data } : {}),
    ...(v.github !== undefined ? { github: v.github } : {}),
    dryRun,
    yes: v.yes === true,
    json: v.json === true,
  }
}

/** The app's name from its checkout's directory (`/srv/My_App` → `my-app`), or undefined when none fits. Pure. */
export function nameFromCheckout(checkout: string): string | undefined {
  const base = path.basename(checkout).toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^[^a-z]+/, '').replace(/-+$/, '').slice(0, 32).replace(/-+$/, '')
  return base && APP_NAME_RE.test(base) && base !== 'upkeep' ? base : undefined
}
