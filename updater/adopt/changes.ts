import { lstat, mkdir, readFile, rm, stat } from 'node:fs/promises'
import path from 'node:path'
import type { AppDefinition } from '../shared/apps/definition'
import type { Registry } from '../shared/apps/registry'
import { writeFileAtomic } from '../shared/atomic-write'
import type { Config } from '../shared/config'
import { UpdateError } from '../shared/errors'
import { readInstalled, writeInstalled, type Installed } from '../shared/installed'
import { createAppPaths, createManagerPaths, UPKEEP_APP } from '../shared/paths'
import type { RunAs } from '../adapters/exec'
import { ownerOf, userByName } from '../adapters/fs'
import type { RunCommand } from '../adapters/systemd'
import { ensureStateDirAsRoot } from '../broker/spawn-worker'
import { APPS_DROP_IN, appWritePaths, findUnitDropIns, renderAppsDropIn, renderUnitDropIn, UNIT_DROP_IN, UPDATER_UNITS, type AppWritePaths } from './drop-ins'
import { hiddenFromUnits } from './propose'

// What `upkeep app add` and `upkeep app remove` change, as a list computed before anything is
// changed (what --dry-run prints), each change announced and idempotent: a file already as it
// should be is no change, so running the command again changes nothing.

export interface Change {
  summary: string
  apply(): Promise<void>
}

/** The host's side effects: its configuration and apps, systemd's unit directory, systemctl. */
export interface ChangeHost {
  config: Config
  registry: Registry
  /** Where drop-ins go: /etc/systemd/system. */
  systemdDir: string
  run: RunCommand
}

export function definitionFile(config: Config, name: string): string {
  return path.join(config.appsDir, `${name}.json`)
}

/** The content of a definition file: indented, with lists of plain values (an argv, the units) on one line. Pure. */
export function definitionText(json: Record<string, unknown>): string {
  const flat = (v: unknown): boolean => v === null || typeof v !== 'object' || (Array.isArray(v) && v.every((x) => x === null || typeof x !== 'object'))
  const format = (v: unknown, indent: string): string => {
    if (flat(v)) return Array.isArray(v) ? `[${v.map((x) => JSON.stringify(x)).join(', ')}]` : JSON.stringify(v)
    const inner = indent + '  '
    if (Array.isArray(v)) return v.every(flat) ? `[${v.map((x) => format(x, inner)).join(', ')}]` : `[\n${v.map((x) => inner + format(x, inner)).join(',\n')}\n${indent}]`
    const entries = Object.entries(v as Record<string, unknown>)
    return entries.length ? `{\n${entries.map(([k, x]) => `${inner}${JSON.stringify(k)}: ${format(x, inner)}`).join(',\n')}\n${indent}}` : '{}'
  }
  return format(json, '') + '\n'
}

/** Top-level fields (one level down) whose value differs: what a replaced definition changes. Pure. */
export function changedFields(before: Record<string, unknown>, after: Record<string, unknown>): string[] {
  const out: string[] = []
  for (const key of new Set([...Object.keys(before), ...Object.keys(after)])) {
    const a = before[key]
    const b = after[key]
    if (JSON.stringify(a) === JSON.stringify(b)) continue
    if (a && b && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b)) {
      const x = a as Record<string, unknown>
      const y = b as Record<string, unknown>
      for (const k of new Set([...Object.keys(x), ...Object.keys(y)])) if (JSON.stringify(x[k]) !== JSON.stringify(y[k])) out.push(`${key}.${k}`)
    } else out.push(key)
  }
  return out
}

async function readText(file: string): Promise<string | undefined> {
  return readFile(file, 'utf8').catch(() => undefined)
}

/** Writes `content` to a root-owned file (0644) when it differs. */
async function fileChange(file: string, content: string, what: string): Promise<Change | undefined> {
  const old = await readText(file)
  if (old === content) return undefined
  return {
    summary: `${old === undefined ? 'create' : 'replace'} ${file} (${what})`,
    async apply() {
      await mkdir(path.dirname(file), { recursive: true, mode: 0o755 })
      await writeFileAtomic(file, content, { mode: 0o644 })
    },
  }
}

function removeChange(file: string, what: string): Change {
  return { summary: `remove ${file} (${what})`, apply: () => rm(file, { force: true }) }
}

/** The user's home, when the updater units can see it and it is theirs: build caches (npm, go) live there. */
async function usableHome(def: AppDefinition): Promise<string | undefined> {
  const user = def.user ? await userByName(def.user) : await ownerOf(def.checkout).catch(() => undefined)
  const home = user?.home
  if (!user || !home || home === '/' || !home.startsWith('/') || hiddenFromUnits(home)) return undefined
  const s = await stat(home).catch(() => undefined)
  return s?.isDirectory() && s.uid === user.uid ? home : undefined
}

/** The drop-ins of the updater units for exactly these apps (none left: the files go). */
async function appsDropInChanges(host: ChangeHost, defs: AppDefinition[]): Promise<Change[]> {
  const manager = createManagerPaths(host.config)
  const apps: AppWritePaths[] = []
  for (const def of defs) apps.push(appWritePaths(def, createAppPaths(def, manager).stateDir, await usableHome(def)))
  const changes: Change[] = []
  for (const unit of UPDATER_UNITS) {
    const file = path.join(host.systemdDir, `${unit}.d`, APPS_DROP_IN)
    if (!apps.length) {
      if ((await readText(file)) !== undefined) changes.push(removeChange(file, 'no apps left'))
      continue
    }
    const c = await fileChange(file, renderAppsDropIn(apps), `ReadWritePaths for ${apps.map((a) => a.name).join(', ')}`)
    if (c) changes.push(c)
  }
  return changes
}

/** The other apps' definitions, as they are on file now (a broken one is left out, and said so). */
async function otherApps(host: ChangeHost, name: string, notes: string[]): Promise<AppDefinition[]> {
  const out: AppDefinition[] = []
  for (const e of await host.registry.list()) {
    if (e.name === UPKEEP_APP || e.name === name) continue
    if (e.ok) out.push(e.def)
    else notes.push(`${e.file} is broken (${e.error.message.split('\n')[0]}): its paths are left out of ${APPS_DROP_IN} until it is fixed`)
  }
  return out
}

const daemonReload = (host: ChangeHost): Change => ({
  summary: 'systemctl daemon-reload',
  async apply() {
    const r = await host.run('systemctl', ['daemon-reload'], { timeoutMs: 60_000 })
    if (r.exitCode !== 0) throw new UpdateError('INTERNAL', `systemctl daemon-reload failed: ${(r.stderr || r.stdout).trim()}`, { hint: 'Run it by hand: systemctl daemon-reload' })
  },
})

export interface AddPlan {
  def: AppDefinition
  json: Record<string, unknown>
  user: RunAs
  /** What runs now; undefined when it cannot be told (nothing is recorded then). */
  installed?: Installed
}

/** Every change adding (or re-adding) an app makes, in order; empty when it is added as shown. */
export async function planAdd(host: ChangeHost, plan: AddPlan, notes: string[]): Promise<Change[]> {
  const { def, user } = plan
  const changes: Change[] = []
  const file = definitionFile(host.config, def.name)
  const old = await readText(file)
  let before: Record<string, unknown> | undefined
  try {
    before = old === undefined ? undefined : (JSON.parse(old) as Record<string, unknown>)
  } catch {
    before = undefined
  }
  const text = definitionText(plan.json)
  if (old !== text) {
    const fields = before ? changedFields(before, plan.json) : []
    changes.push({
      summary: old === undefined ? `create ${file} (the definition above; root's, 0644)` : `replace ${file} (${fields.length ? `changes ${fields.join(', ')}` : 'the definition above'})`,
      async apply() {
        await mkdir(host.config.appsDir, { recursive: true, mode: 0o755 })
        await writeFileAtomic(file, text, { mode: 0o644 })
      },
    })
  }

  const paths = createAppPaths(def, createManagerPaths(host.config))
  const s = await lstat(paths.stateDir).catch(() => undefined)
  if (!s) changes.push({ summary: `create ${paths.stateDir} (its update state: ${user.name}'s, 0755)`, apply: () => ensureStateDirAsRoot(host.config, def, user) })
  else if (!s.isDirectory() || s.uid !== user.uid) throw new UpdateError('FOREIGN_OWNER', `${paths.stateDir} (the app's update state) is not a directory of ${user.name}'s`, { hint: `chown ${user.name}: ${paths.stateDir}` })

  if (plan.installed) {
    const installed = plan.installed
    const current = s ? await readInstalled(paths.installed) : undefined
    if (current?.version !== installed.version || current?.commit !== installed.commit) {
      changes.push({
        summary: `${current ? 'replace' : 'create'} ${paths.installed} (the running version, ${installed.version}; ${user.name}'s)`,
        apply: () => writeInstalled(paths.installed, installed, { owner: user }),
      })
    }
  }

  if (host.config.serviceManager === 'systemd') {
    const systemd = [...(await appsDropInChanges(host, [...(await otherApps(host, def.name, notes)), def]))]
    for (const unit of def.run.units) {
      const c = await fileChange(path.join(host.systemdDir, `${unit}.d`, UNIT_DROP_IN), renderUnitDropIn(def.name), 'After=upkeep-recover.service')
      if (c) systemd.push(c)
    }
    const wanted = new Set(def.run.units.map((u) => path.join(host.systemdDir, `${u}.d`, UNIT_DROP_IN)))
    for (const f of await findUnitDropIns(host.systemdDir, def.name)) if (!wanted.has(f)) systemd.push(removeChange(f, 'the unit is no longer one of the app’s'))
    if (systemd.length) changes.push(...systemd, daemonReload(host))
  }
  return changes
}

/** Every change removing an app makes: its definition and drop-ins go; its state stays. */
export async function planRemove(host: ChangeHost, name: string, notes: string[]): Promise<Change[]> {
  const file = definitionFile(host.config, name)
  if (!(await lstat(file).catch(() => undefined))) throw new UpdateError('NOT_FOUND', `there is no app "${name}" (no ${file})`, { hint: 'See the apps: upkeep app list' })
  const changes: Change[] = [removeChange(file, 'the definition')]
  if (host.config.serviceManager === 'systemd') {
    const systemd = [...(await findUnitDropIns(host.systemdDir, name)).map((f) => removeChange(f, 'After=upkeep-recover.service')), ...(await appsDropInChanges(host, await otherApps(host, name, notes)))]
    if (systemd.length) changes.push(...systemd, daemonReload(host))
  }
  return changes
}
