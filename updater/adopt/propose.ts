import path from 'node:path'
import { parseAppDefinition, serializeAppDefinition, type AppDefinition } from '../shared/apps/definition'
import { UpdateError } from '../shared/errors'
import { UsageError } from '../commands/common'
import type { CheckoutFacts } from './inspect'
import { nameFromCheckout, VERSION_OPTION_HELP, type AddOptions, type VersionJson } from './options'
import { layoutOf, unitsRunning, type UnitInfo } from './units'

// The definition `upkeep app add` writes: what the options say, else what the definition already
// on file says, else what the checkout and its units show. What none of them can tell is refused
// with the option that tells it.

/** Paths the updater units cannot see or keep (ProtectHome=yes, PrivateTmp=yes). */
const HIDDEN_FROM_UNITS: [prefix: string, why: string][] = [
  ['/home', 'ProtectHome=yes'],
  ['/root', 'ProtectHome=yes'],
  ['/run/user', 'ProtectHome=yes'],
  ['/tmp', 'PrivateTmp=yes'],
  ['/var/tmp', 'PrivateTmp=yes'],
]

/** Why the updater units could not work in `p`, or undefined when they can. Pure. */
export function hiddenFromUnits(p: string): string | undefined {
  for (const [prefix, why] of HIDDEN_FROM_UNITS) {
    if (p === prefix || p.startsWith(prefix + '/')) return `the updater units run with ${why}: they cannot see or change ${prefix}`
  }
  return undefined
}

export interface ProposeInput {
  opts: AddOptions
  facts: CheckoutFacts
  /** Every service unit systemd knows. */
  units: UnitInfo[]
  /** The definition already on file for this checkout or name. */
  existing?: AppDefinition
  /** The version probe found in the health answer (undefined: none found or nothing answered). */
  foundProbe?: VersionJson
}

export interface Proposal {
  def: AppDefinition
  /** The file's content. */
  json: Record<string, unknown>
  /** The units found running from the checkout (the ones used unless --unit said otherwise). */
  found: UnitInfo[]
  /** What was inferred and from what, and what the operator may want to add. */
  notes: string[]
}

/** The name: --name, else the existing definition's, else from the checkout's directory. Pure. */
export function chooseName(opts: AddOptions, existing: AppDefinition | undefined): string {
  const name = opts.name ?? existing?.name ?? nameFromCheckout(opts.checkout)
  if (!name) throw new UsageError(`cannot make an app name of "${path.basename(opts.checkout)}": give one with --name NAME (a-z, 0-9, "-", starting with a letter)`)
  return name
}

/** Pure: checks the facts and builds the definition, or throws what is missing and how to give it. */
export function proposeDefinition(input: ProposeInput): Proposal {
  const { opts, facts, existing } = input
  const notes: string[] = []
  const checkout = opts.checkout
  for (const p of new Set([checkout, facts.realPath])) {
    const why = hiddenFromUnits(p)
    if (why) throw new UpdateError('BAD_CONFIG', `${p}: ${why}`, { hint: `Move the checkout (e.g. to /srv/${path.basename(checkout)}), point its units there, then add it again.` })
  }
  if (!facts.isGit) throw new UpdateError('BAD_CONFIG', `${checkout} is not a git checkout (no .git)`, { hint: `Upkeep updates apps deployed as a git checkout: clone the app's repository there (git clone URL ${checkout}).` })
  const owner = facts.owner
  if (owner.uid === 0) {
    throw new UpdateError('FOREIGN_OWNER', `${checkout} belongs to root; git and builds never run as root`, {
      hint: `Give it to the user the app runs as: useradd --system ${opts.user ?? 'myapp'} && chown -R ${opts.user ?? 'myapp'}: ${checkout}`,
    })
  }
  const user = opts.user ?? existing?.user ?? owner.name
  if (user !== owner.name) {
    throw new UpdateError('FOREIGN_OWNER', `${checkout} belongs to ${owner.name}, not to ${user}, the user it would be updated as`, { hint: `chown -R ${user}: ${checkout} (or leave out --user: the owner is the app's user)` })
  }
  const git = facts.git!
  if (!git.remoteUrl) {
    throw new UpdateError('BAD_CONFIG', `${checkout} has no remote "origin": Upkeep fetches releases from it`, { hint: `sudo -u ${owner.name} git -C ${checkout} remote add origin URL` })
  }

  // Units: the ones named, else the ones on file, else every unit running from the checkout.
  const checkouts = [...new Set([checkout, facts.realPath])]
  const found = unitsRunning(input.units, checkouts)
  const known = new Map(input.units.map((u) => [u.id, u]))
  let units = opts.units ?? existing?.run.units ?? found.map((u) => u.id)
  if (!units.length) {
    throw new UpdateError('NOT_FOUND', `no systemd unit runs from ${checkout} (none has its WorkingDirectory= or ExecStart= there)`, {
      hint: 'Write the unit that runs the app from the checkout and start it (README "Add your app"), or name it: --unit myapp.service',
    })
  }
  for (const u of units) {
    const info = known.get(u)
    if (!info || info.loadState !== 'loaded') {
      throw new UpdateError('NOT_FOUND', `systemd has no unit ${u}${info ? ` (${info.loadState})` : ''}`, { hint: `Check the name (systemctl list-unit-files '${u.replace(/\.service$/, '')}*'), or run systemctl daemon-reload after writing it.` })
    }
  }
  units = [...new Set(units)]
  const users = [...new Set(units.map((u) => known.get(u)?.user || 'root'))]
  if (users.some((u) => u !== user)) notes.push(`the units run as ${users.join(', ')}; builds and updates run as ${user}, the checkout's owner`)
  const sockets = opts.sockets ?? existing?.run.sockets ?? [...new Set(units.flatMap((u) => known.get(u)?.triggeredBy.filter((t) => t.endsWith('.socket')) ?? []))]

  const inferredLayout = layoutOf(units.map((u) => known.get(u)!), checkouts)
  const layout = opts.layout ?? existing?.build.layout ?? inferredLayout
  if (!opts.layout && !existing) notes.push(inferredLayout === 'releases' ? `layout releases: ${units.join(', ')} run${units.length === 1 ? 's' : ''} from ${checkout}/current/` : `layout in-place: ${units.join(', ')} run${units.length === 1 ? 's' : ''} from the checkout itself`)

  const commands = opts.buildCommands ?? existing?.build.commands
  const repoCommands = git.repoBuild?.commands
  if (!commands && !repoCommands) {
    if (layout === 'releases') {
      throw new UpdateError('BAD_CONFIG', 'the releases layout needs a build: nothing says how to build a release (no --build-command, no upkeep.json in the checkout)', {
        hint: `Name each command as a JSON argv, in order: --build-command '["sh","build.sh"]' (and --build-output DIR when the release is not the checkout itself)`,
      })
    }
    notes.push('no build commands: an update only checks the release out (say --build-command \'["npm","ci"]\' to build)')
  } else if (!commands) notes.push(`build: the release's own upkeep.json (${repoCommands!.map((c) => c.join(' ')).join('; ')})`)

  const url = opts.healthUrl ?? existing?.health.url
  if (!url) {
    const ports = [...new Set(units.flatMap((u) => Object.entries(known.get(u)?.environment ?? {}).filter(([k, v]) => /PORT$/i.test(k) && /^\d+$/.test(v)).map(([, v]) => v)))]
    throw new UsageError(
      [
        'say where the app answers when it is up: --health-url URL (Upkeep checks it after every update)',
        `  e.g. --health-url http://127.0.0.1:${ports[0] ?? 'PORT'}/health${ports.length ? ` (the unit sets PORT=${ports.join(', ')})` : ''}`,
        `  To find it: the app's docs ("health", "status", "ping"), or try: curl -i http://127.0.0.1:${ports[0] ?? 'PORT'}/`,
        `  If the answer shows the version, say where: --health-version ${VERSION_OPTION_HELP}`,
      ].join('\n'),
    )
  }
  let version: VersionJson
  if (opts.healthVersion !== undefined) version = opts.healthVersion
  else if (existing && existing.health.url === url) version = versionJson(existing)
  else if (input.foundProbe !== undefined) {
    version = input.foundProbe
    notes.push(`health version: found the running version at ${describeProbe(version)} of ${url}`)
  } else {
    version = null
    notes.push(`health version: none (the answer of ${url} does not show the running version); an update then only waits for HTTP ${existing?.health.expectStatus ?? 200}. Say where it is with --health-version ${VERSION_OPTION_HELP}`)
  }

  const data = opts.data ?? existing?.data.paths.map((p) => (p.startsWith(checkout + '/') ? path.relative(checkout, p) : p)) ?? []
  if (!data.length) {
    const envPaths = [...new Set(units.flatMap((u) => Object.entries(known.get(u)?.environment ?? {}).filter(([k, v]) => /DATA|STATE|STORAGE/i.test(k) && v.startsWith('/')).map(([, v]) => v)))]
    notes.push(`no data paths: nothing is backed up before an update${envPaths.length ? ` (the unit sets ${envPaths.join(', ')}: --data ${envPaths[0]})` : ' (say --data PATH)'}`)
  }
  for (const d of data) {
    const abs = path.resolve(checkout, d)
    const why = hiddenFromUnits(abs)
    if (why) throw new UpdateError('BAD_CONFIG', `data path ${abs}: ${why}`, { hint: 'Move the data outside /home, /root and /tmp, or leave it out of --data.' })
  }

  const base = existing ? serializeAppDefinition(existing) : {}
  const old = base as { build?: Record<string, unknown>; run?: Record<string, unknown>; health?: Record<string, unknown>; data?: Record<string, unknown> }
  const output = opts.buildOutput ?? (existing?.build.layout === 'releases' ? existing.build.output : undefined)
  const json: Record<string, unknown> = {
    schema: 1,
    name: chooseName(opts, existing),
    checkout,
    user,
    source: opts.github ? { github: opts.github } : existing ? (base as { source: unknown }).source : { git: 'origin' },
    build: {
      ...(old.build ?? {}),
      ...(commands ? { commands } : {}),
      layout,
      ...(layout === 'releases' && output && output !== '{out}' ? { output } : {}),
    },
    run: { ...(old.run ?? {}), units, ...(sockets.length ? { sockets } : {}) },
    health: { ...(old.health ?? {}), url, version, ...(opts.soakSeconds !== undefined ? { soakSeconds: opts.soakSeconds } : {}) },
    data: { ...(old.data ?? {}), paths: data },
  }
  const build = json.build as Record<string, unknown>
  if (layout === 'in-place') delete build.output
  if (!commands) delete build.commands
  if (!sockets.length) delete (json.run as Record<string, unknown>).sockets
  const def = parseAppDefinition(json, `the definition of ${json.name as string}`)
  return { def, json: serializeAppDefinition(def), found, notes }
}

function versionJson(def: AppDefinition): VersionJson {
  const v = def.health.version
  return v.kind === 'json-pointer' ? { jsonPointer: v.pointer } : v.kind === 'regex' ? { regex: v.pattern } : v.kind === 'header' ? { header: v.name } : null
}

/** `JSON pointer /build/version`, `header x-version`… Pure. */
export function describeProbe(v: VersionJson): string {
  if (v === null) return 'nowhere'
  if ('jsonPointer' in v) return `JSON pointer ${v.jsonPointer || '""'}`
  if ('regex' in v) return `regex /${v.regex}/`
  return `header ${v.header}`
}
