import path from 'node:path'
import type { RunCommand } from '../adapters/systemd'

// Which systemd units run an app: the ones whose WorkingDirectory= or ExecStart= point into its
// checkout. Read from `systemctl show` (what systemd itself loaded, drop-ins included), never by
// parsing unit files.

/** What `upkeep app add` needs to know of one service unit. */
export interface UnitInfo {
  id: string
  loadState: string
  /** Without systemd's prefixes (`-`, `!`: "may be missing"). */
  workingDirectory: string | undefined
  /** Every ExecStart= command, as its argv. */
  execStart: string[][]
  user: string | undefined
  fragmentPath: string | undefined
  /** Socket (and other) units that start it. */
  triggeredBy: string[]
  environment: Record<string, string>
  dropInPaths: string[]
}

export const SHOW_PROPERTIES = 'Id,LoadState,WorkingDirectory,ExecStart,User,FragmentPath,TriggeredBy,Environment,DropInPaths'

/** `systemctl show` output of several units (blocks separated by a blank line) → one map of properties each. Pure. */
export function parseShowBlocks(output: string): Map<string, string[]>[] {
  return output
    .split(/\n\s*\n/)
    .filter((b) => b.trim())
    .map((block) => {
      const props = new Map<string, string[]>()
      for (const line of block.split('\n')) {
        const i = line.indexOf('=')
        if (i <= 0) continue
        const key = line.slice(0, i)
        props.set(key, [...(props.get(key) ?? []), line.slice(i + 1)])
      }
      return props
    })
}

/**
 * One `ExecStart=` value as systemctl shows it: `{ path=/x ; argv[]=/x a b ; ignore_errors=no ; … }`
 * → the argv (`path` first when argv is empty). Pure.
 */
export function parseExecCommand(value: string): string[] | undefined {
  const argv = /(?:^|[{;]\s*)argv\[\]=([^;]*?)\s*;/.exec(value)?.[1]?.trim()
  const file = /(?:^|[{;]\s*)path=([^;]*?)\s*;/.exec(value)?.[1]?.trim()
  if (argv) return argv.split(/\s+/)
  return file ? [file] : undefined
}

/** `Environment=` as systemctl shows it (`A=1 "B=two words"`) → variables. Pure. */
export function parseEnvironment(value: string): Record<string, string> {
  const env: Record<string, string> = {}
  for (const m of value.matchAll(/"((?:[^"\\]|\\.)*)"|(\S+)/g)) {
    const word = m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2]!
    const i = word.indexOf('=')
    if (i > 0) env[word.slice(0, i)] = word.slice(i + 1)
  }
  return env
}

/** The units of a `systemctl show -p SHOW_PROPERTIES` output. Pure. */
export function parseUnits(output: string): UnitInfo[] {
  return parseShowBlocks(output).flatMap((p) => {
    const one = (k: string) => p.get(k)?.at(-1)?.trim() || undefined
    const id = one('Id')
    if (!id) return []
    const wd = one('WorkingDirectory')?.replace(/^[-!]+/, '')
    return [
      {
        id,
        loadState: one('LoadState') ?? 'unknown',
        workingDirectory: wd || undefined,
        execStart: (p.get('ExecStart') ?? []).map(parseExecCommand).filter((a): a is string[] => a !== undefined),
        user: one('User'),
        fragmentPath: one('FragmentPath'),
        triggeredBy: (one('TriggeredBy') ?? '').split(/\s+/).filter(Boolean),
        environment: parseEnvironment(one('Environment') ?? ''),
        dropInPaths: (one('DropInPaths') ?? '').split(/\s+/).filter(Boolean),
      },
    ]
  })
}

/** `systemctl list-unit-files --no-legend --plain` → unit names, templates (`x@.service`) left out. Pure. */
export function parseUnitFileList(output: string): string[] {
  return output
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((n) => /\.service$/.test(n) && !n.includes('@.'))
}

/** True when `p` is `dir` or inside it. Pure. */
export function isInside(p: string, dir: string): boolean {
  const a = path.normalize(p)
  return a === dir || a.startsWith(dir.endsWith('/') ? dir : dir + '/')
}

/** Where a unit points into `checkout`: its working directory, or a path in one of its commands. Pure. */
export function pathsInto(unit: UnitInfo, checkout: string): string[] {
  const candidates = [unit.workingDirectory, ...unit.execStart.flat()].filter((p): p is string => !!p && p.startsWith('/'))
  return [...new Set(candidates.filter((p) => isInside(p, checkout)))]
}

/** The units (one of `checkouts`: the path given and its real path) that run from the checkout. Pure. */
export function unitsRunning(units: UnitInfo[], checkouts: string[]): UnitInfo[] {
  return units.filter((u) => checkouts.some((c) => pathsInto(u, c).length > 0))
}

/**
 * The layout the units show: a unit that runs from `<checkout>/current/…` runs a release behind
 * the `current` symlink (`releases`); any other runs from the checkout itself (`in-place`). Pure.
 */
export function layoutOf(units: UnitInfo[], checkouts: string[]): 'releases' | 'in-place' {
  const fromCurrent = (u: UnitInfo, c: string) => pathsInto(u, c).some((p) => isInside(p, path.join(c, 'current')))
  return units.some((u) => checkouts.some((c) => fromCurrent(u, c))) ? 'releases' : 'in-place'
}

/** Every service unit systemd knows, with the properties above (aliases once). */
export async function listServiceUnits(run: RunCommand): Promise<UnitInfo[]> {
  const files = await run('systemctl', ['list-unit-files', '--type=service', '--no-legend', '--no-pager', '--plain'], { timeoutMs: 30_000 })
  if (files.exitCode !== 0) throw new Error(`systemctl list-unit-files failed: ${(files.stderr || files.stdout).trim()}`)
  return showUnits(run, parseUnitFileList(files.stdout))
}

/** `systemctl show` of the named units (in chunks: a host may have hundreds). */
export async function showUnits(run: RunCommand, names: string[]): Promise<UnitInfo[]> {
  const seen = new Map<string, UnitInfo>()
  for (let i = 0; i < names.length; i += 100) {
    const chunk = names.slice(i, i + 100)
    const r = await run('systemctl', ['show', '-p', SHOW_PROPERTIES, '--', ...chunk], { timeoutMs: 30_000 })
    if (r.exitCode !== 0) throw new Error(`systemctl show failed: ${(r.stderr || r.stdout).trim()}`)
    for (const u of parseUnits(r.stdout)) if (!seen.has(u.id)) seen.set(u.id, u)
  }
  return [...seen.values()]
}
