import type { AppDefinition } from '../shared/apps/definition'
import { createRegistry, type AppEntry, type Registry } from '../shared/apps/registry'
import type { Config } from '../shared/config'
import { UpdateError } from '../shared/errors'
import { readHistory } from '../shared/history'
import { readInstalled, type Installed } from '../shared/installed'
import { createAppPaths, createManagerPaths, UPKEEP_APP } from '../shared/paths'
import { loadConfigOrExit } from '../shared/runtime'
import { currentBuild, isBuilt } from '../shared/version'
import { isRoot } from '../adapters/fs'
import { runWithExeca, type RunCommand } from '../adapters/systemd'
import { checkApp, userChecksInWorker, type CheckReport } from '../adopt/check-app'
import { createUserCheckDeps, userChecks, type CheckLine } from '../adopt/checks'
import { definitionFile, definitionText, planAdd, planRemove, type Change, type ChangeHost } from '../adopt/changes'
import { inspectCheckout, runningVersion, type CheckoutFacts } from '../adopt/inspect'
import { parseAddOptions, type AddOptions, type VersionJson } from '../adopt/options'
import { chooseName, describeProbe, proposeDefinition } from '../adopt/propose'
import { runAsUser } from '../adopt/run-as'
import { listServiceUnits, pathsInto, showUnits, type UnitInfo } from '../adopt/units'
import { adoptUnitEnvironment } from './unit-environment'
import { findVersionProbe, sampleHealth } from '../adopt/version-probe'
import { print } from '../console-status'
import { confirm, EXIT, fail, parseOptions, UsageError } from './common'

// `upkeep app add|check|list|show|remove`: adopting an app that already runs on this host, and
// looking after the definitions. Root's part is small and announced: the definition, the app's
// state directory, drop-ins beside the units. Nothing of the app's own is changed.

const SYSTEMD_DIR = '/etc/systemd/system'

/**
 * The configuration the updater units run with. An operator's root shell has neither their
 * Environment= (APP_DIR, PORT…) nor INVOCATION_ID, so on a host booted with systemd
 * (/run/systemd/system) root takes what upkeep-updater.service sets, where the shell sets nothing,
 * and systemd as the service manager. Put in process.env: the workers this starts read it too.
 */
async function appConfig(_run: RunCommand): Promise<Config> {
  adoptUnitEnvironment()
  return loadConfigOrExit(process.env, import.meta.url)
}

function verifyRoot(what: string): void {
  if (!isRoot()) throw new UpdateError('FORBIDDEN', `upkeep app ${what} changes root's files and runs git as the checkout's owner: it needs root`, { hint: `Run it as root: sudo upkeep app ${what} …` })
}

export async function appCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args
  switch (sub) {
    case 'add':
      return addCommand(rest)
    case 'check':
      return checkCommand(rest)
    case 'list':
      return listCommand(rest)
    case 'show':
      return showCommand(rest)
    case 'remove':
      return removeCommand(rest)
    case 'trust':
      return (await import('./app-trust')).appTrustCommand(rest)
    default:
      throw new UsageError(sub ? `unknown app command "${sub.slice(0, 40)}" (add, check, list, show, remove, trust)` : 'say what to do: upkeep app add|check|list|show|remove|trust')
  }
}

// ---- add -------------------------------------------------------------------------------------

interface Inspection {
  facts: CheckoutFacts
  units: UnitInfo[]
  existing?: AppEntry & { ok: true }
}

async function inspect(config: Config, registry: Registry, opts: AddOptions, run: RunCommand): Promise<Inspection> {
  if (config.serviceManager !== 'systemd') {
    throw new UpdateError('BAD_CONFIG', 'upkeep app add finds the units that run the app, and this host does not run systemd', { hint: `Without systemd, write ${config.appsDir}/NAME.json by hand with "run.command" (README "App definition reference").` })
  }
  const facts = await inspectCheckout(opts.checkout, runAsUser)
  const entries = await registry.list()
  const sameCheckout = entries.find((e): e is AppEntry & { ok: true } => e.ok && e.name !== UPKEEP_APP && (e.def.checkout === opts.checkout || e.def.checkout === facts.realPath))
  if (entries.some((e) => e.name === UPKEEP_APP && e.ok && (e.def.checkout === opts.checkout || e.def.checkout === facts.realPath))) {
    throw new UpdateError('BAD_REQUEST', `${opts.checkout} is Upkeep's own checkout: Upkeep updates itself with its built-in definition`, { hint: 'See upkeep app show upkeep' })
  }
  if (sameCheckout && opts.name && opts.name !== sameCheckout.name) {
    throw new UpdateError('BAD_REQUEST', `${opts.checkout} is already the app "${sameCheckout.name}"`, { hint: `To rename it: upkeep app remove ${sameCheckout.name}, then upkeep app add ${opts.checkout} --name ${opts.name}` })
  }
  if (!sameCheckout) {
    const name = chooseName(opts, undefined)
    const taken = entries.find((e) => e.name === name)
    if (taken?.ok) throw new UpdateError('BAD_REQUEST', `an app named "${name}" already updates ${taken.def.checkout}`, { hint: `Give this one another name: --name ${name}-2 (or upkeep app remove ${name} first)` })
  }
  const units = await listServiceUnits(run).catch((err: Error) => {
    throw new UpdateError('INTERNAL', `cannot list systemd's units: ${err.message}`, { hint: 'Is systemd running? systemctl is-system-running' })
  })
  // Instances of templates (app@blue.service) have no unit file of their own: asked for by name.
  const named = [...(opts.units ?? []), ...(sameCheckout?.def.run.units ?? [])].filter((u) => !units.some((k) => k.id === u))
  if (named.length) units.push(...(await showUnits(run, [...new Set(named)]).catch(() => [])))
  return { facts, units, ...(sameCheckout ? { existing: sameCheckout } : {}) }
}

function describeFacts(f: CheckoutFacts, units: UnitInfo[], running: Installed | undefined, from: string | undefined): string[] {
  const g = f.git
  const tags = !g ? '' : g.tags.ok ? (g.tags.release.length ? `${g.tags.release.length} release tag${g.tags.release.length === 1 ? '' : 's'}, newest ${g.tags.release[0]}` : 'no release tags (vX.Y.Z) yet') : `tags not listed: ${g.tags.error}`
  const lines = [
    `  owner     ${f.owner.name} (uid ${f.owner.uid})`,
    `  remote    ${g?.remoteUrl ? `origin ${g.remoteUrl}${tags ? ` (${tags})` : ''}` : 'none'}`,
    `  running   ${running ? `${running.version} (${from})` : 'unknown: no release tag at HEAD'}`,
  ]
  const checkouts = [...new Set([f.checkout, f.realPath])]
  for (const u of units) lines.push(`  unit      ${u.id}: ${checkouts.flatMap((c) => pathsInto(u, c)).join(', ') || '(named)'}${u.user ? `, User=${u.user}` : ''}`)
  return lines
}

async function addCommand(args: string[]): Promise<number> {
  const opts = parseAddOptions(args, process.cwd())
  try {
    verifyRoot('add')
    const config = await appConfig(runWithExeca)
    const registry = createRegistry(config)
    const run = runWithExeca
    const { facts, units, existing } = await inspect(config, registry, opts, run)
    const running = runningVersion(facts)
    const installed: Installed | undefined = running ? { version: running.version, ...(running.tag ? { tag: running.tag } : {}), ...(running.commit ? { commit: running.commit } : {}), at: new Date().toISOString() } : undefined

    // The health answer, to find where it reports the running version (a GET changes nothing).
    const url = opts.healthUrl ?? existing?.def.health.url
    const sample = url ? await sampleHealth(url) : undefined
    const probeNeeded = opts.healthVersion === undefined && !(existing && existing.def.health.url === url)
    const foundProbe = probeNeeded && sample && running ? findVersionProbe(sample, running.version) : undefined
    const proposal = proposeDefinition({ opts, facts, units, ...(existing ? { existing: existing.def } : {}), ...(foundProbe !== undefined ? { foundProbe } : {}) })
    const { def, json, notes } = proposal
    if (url && !sample) notes.push(`nothing answers at ${url} now: is the app running? (upkeep app check ${def.name} tells)`)
    if (!running) notes.push('the running version is unknown (no release tag at HEAD): nothing is recorded; the first update installs a release')
    const host: ChangeHost = { config, registry, systemdDir: SYSTEMD_DIR, run }
    // Recorded only when what runs was found; an existing record of the same version is kept.
    const changes = await planAdd(host, { def, json, user: facts.owner, ...(installed ? { installed } : {}) }, notes)

    const shownUnits = units.filter((u) => def.run.units.includes(u.id))
    if (opts.json) {
      const report = { app: def.name, definition: json, file: definitionFile(config, def.name), running: running ?? null, units: def.run.units, notes, changes: changes.map((c) => c.summary), dryRun: opts.dryRun }
      if (opts.dryRun || !changes.length) {
        print(JSON.stringify({ ...report, applied: false }))
        return EXIT.ok
      }
      if (process.stdin.isTTY && !opts.yes) throw new UsageError('--json changes nothing without --yes on a terminal (or use --dry-run)')
      await applyAll(changes, false)
      print(JSON.stringify({ ...report, applied: true }))
      return EXIT.ok
    }
    print(`Inspected ${opts.checkout}${existing ? ` (already the app "${existing.name}")` : ''}:`)
    for (const l of describeFacts(facts, shownUnits, installed, running?.from)) print(l)
    print('')
    print(`Definition of ${def.name} (${definitionFile(config, def.name)}):`)
    print(definitionText(json).trimEnd().replace(/^/gm, '  '))
    const probe = (json.health as { version: VersionJson }).version
    print(probe ? `  (after an update, ${def.health.url} must report the new version at ${describeProbe(probe)})` : `  (after an update, ${def.health.url} must answer HTTP ${def.health.expectStatus}; no version is checked)`)
    if (notes.length) {
      print('')
      print('Notes:')
      for (const n of notes) print(`  - ${n}`)
    }
    print('')
    if (!changes.length) {
      print(`Nothing to change: ${def.name} is added as shown. Check it: upkeep app check ${def.name}`)
      return EXIT.ok
    }
    print(opts.dryRun ? `Would change (--dry-run: nothing was changed):` : 'Changes:')
    changes.forEach((c, i) => print(`  ${i + 1}. ${c.summary}`))
    if (opts.dryRun) return EXIT.ok
    if (process.stdin.isTTY && !opts.yes && !(await confirm(`Make these ${changes.length} change${changes.length === 1 ? '' : 's'}?`))) {
      print('Nothing changed.')
      return EXIT.failed
    }
    print('')
    await applyAll(changes, true)
    print(`\n${def.name} is added. Next: upkeep app check ${def.name}`)
    return EXIT.ok
  } catch (err) {
    return fail(err, opts.json)
  }
}

async function applyAll(changes: Change[], say: boolean): Promise<void> {
  for (const [i, c] of changes.entries()) {
    try {
      await c.apply()
    } catch (err) {
      const done = i ? ` (${i} of ${changes.length} made; running the command again finishes the rest)` : ''
      if (err instanceof UpdateError) throw new UpdateError(err.code, `${c.summary}: ${err.message}${done}`, err.hint ? { hint: err.hint } : {})
      throw new UpdateError('INTERNAL', `${c.summary}: ${(err as Error).message}${done}`, { hint: 'Fix what the message names, then run the command again: every change is made only once.' })
    }
    if (say) print(`  ✓ ${c.summary}`)
  }
}

// ---- check -----------------------------------------------------------------------------------

async function checkCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseOptions(args, { json: { type: 'boolean' } }, true)
  if (positionals.length !== 1) throw new UsageError('name the app: upkeep app check NAME (upkeep app list shows them)')
  const name = positionals[0]!
  const json = values.json === true
  try {
    const config = await appConfig(runWithExeca)
    const report = await checkApp(
      {
        config,
        registry: createRegistry(config),
        run: runWithExeca,
        userChecks: (app, user, buildPath) => (isRoot() ? userChecksInWorker(config, app, user, buildPath) : createUserCheckDeps(app, config).then((d) => userChecks({ ...d, buildPath }))),
      },
      name,
    )
    if (json) print(JSON.stringify(report))
    else printReport(report)
    return report.ok ? EXIT.ok : EXIT.failed
  } catch (err) {
    return fail(err, json)
  }
}

function printReport(r: CheckReport): void {
  print(`Checking ${r.app}${r.checkout ? ` (${r.checkout}${r.user ? `, as ${r.user}` : ''})` : ''}:`)
  const width = Math.max(...r.checks.map((c) => c.id.length))
  for (const c of r.checks) {
    print(`  ${c.ok ? '✓' : c.skipped ? '-' : '✗'} ${c.id.padEnd(width)}  ${c.message.replace(/\n/g, `\n    ${' '.repeat(width)}`)}`)
    if (!c.ok && c.fix) print(`    ${' '.repeat(width)}  fix: ${c.fix}`)
  }
  const bad = r.checks.filter((c) => !c.ok && !c.skipped).length
  const notRun = r.checks.filter((c) => c.skipped).length
  print(r.ok ? `All ${r.checks.length} checks passed: ${r.app} can be updated.` : `${bad} of ${r.checks.length} checks failed${notRun ? ` (${notRun} not run)` : ''}.`)
}

/** `upkeep --app NAME worker check`: the user-side checks, as JSON on stdout (check-app.ts reads it). */
export async function workerCheck(ctx: { app: AppDefinition; config: Config }): Promise<number> {
  const deps = await createUserCheckDeps(ctx.app, ctx.config)
  const checks: CheckLine[] = await userChecks({ ...deps, buildPath: process.env.PATH ?? deps.buildPath })
  print(JSON.stringify({ checks }))
  return EXIT.ok
}

// ---- list, show, remove ----------------------------------------------------------------------

interface ListRow {
  name: string
  ok: boolean
  checkout?: string
  units?: string[]
  version?: string | null
  lastUpdate?: { status: string; from: string; to: string; finishedAt: string } | null
  error?: { code: string; message: string; hint?: string }
  file?: string
}

async function listRows(config: Config, registry: Registry): Promise<ListRow[]> {
  const manager = createManagerPaths(config)
  const rows: ListRow[] = []
  for (const e of await registry.list()) {
    if (!e.ok) {
      rows.push({ name: e.name, ok: false, file: e.file, error: e.error.toJSON() })
      continue
    }
    const paths = createAppPaths(e.def, manager)
    const installed = await readInstalled(paths.installed)
    const last = (await readHistory(paths.history)).at(-1)
    const version = installed?.version ?? (e.name === UPKEEP_APP && isBuilt() ? currentBuild().version : null)
    rows.push({
      name: e.name,
      ok: true,
      checkout: e.def.checkout,
      units: [...e.def.run.units, ...e.def.run.sockets],
      version,
      lastUpdate: last ? { status: last.status, from: last.from.version, to: last.to.version, finishedAt: last.finishedAt } : null,
    })
  }
  return rows
}

async function listCommand(args: string[]): Promise<number> {
  const { values } = parseOptions(args, { json: { type: 'boolean' } })
  const json = values.json === true
  try {
    const config = await appConfig(runWithExeca)
    const rows = await listRows(config, createRegistry(config))
    if (json) {
      print(JSON.stringify(rows))
      return EXIT.ok
    }
    const table = rows.map((r) =>
      r.ok
        ? [r.name, r.checkout!, r.units!.join(', ') || '-', r.version ?? '-', r.lastUpdate ? `${r.lastUpdate.status} ${r.lastUpdate.from} → ${r.lastUpdate.to} ${r.lastUpdate.finishedAt.slice(0, 16).replace('T', ' ')}` : '-']
        : [r.name, `broken definition: ${r.error!.message.split('\n').join(' ').slice(0, 160)}`],
    )
    const head = ['NAME', 'CHECKOUT', 'UNITS', 'VERSION', 'LAST UPDATE']
    const widths = head.map((h, i) => Math.max(h.length, ...table.filter((t) => t.length === head.length).map((t) => t[i]!.length)))
    const line = (cells: string[]) => (cells.length === head.length ? cells.map((c, i) => (i < cells.length - 1 ? c.padEnd(widths[i]!) : c)).join('  ') : `${cells[0]!.padEnd(widths[0]!)}  ${cells[1]}`)
    print(line(head))
    for (const t of table) print(line(t))
    const broken = rows.filter((r) => !r.ok)
    if (broken.length) print(`\n${broken.map((b) => `${b.name}: ${b.error!.hint ?? `fix ${b.file}`}`).join('\n')}`)
    return EXIT.ok
  } catch (err) {
    return fail(err, json)
  }
}

async function showCommand(args: string[]): Promise<number> {
  const { positionals } = parseOptions(args, {}, true)
  if (positionals.length !== 1) throw new UsageError('name the app: upkeep app show NAME')
  try {
    const config = await appConfig(runWithExeca)
    print(JSON.stringify(await createRegistry(config).get(positionals[0]!), null, 2))
    return EXIT.ok
  } catch (err) {
    return fail(err, false)
  }
}

async function removeCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseOptions(args, { yes: { type: 'boolean', short: 'y' } }, true)
  if (positionals.length !== 1) throw new UsageError('name the app: upkeep app remove NAME')
  const name = positionals[0]!
  if (name === UPKEEP_APP) throw new UsageError('Upkeep itself cannot be removed this way (install.sh --uninstall removes it)')
  try {
    verifyRoot('remove')
    const config = await appConfig(runWithExeca)
    const registry = createRegistry(config)
    const notes: string[] = []
    const changes = await planRemove({ config, registry, systemdDir: SYSTEMD_DIR, run: runWithExeca }, name, notes)
    const stateDir = createAppPaths({ name, checkout: '/', data: { paths: [], backupDir: undefined } }, createManagerPaths(config)).stateDir
    print(`Removing ${name}:`)
    changes.forEach((c, i) => print(`  ${i + 1}. ${c.summary}`))
    for (const n of notes) print(`  note: ${n}`)
    if (process.stdin.isTTY && !values.yes && !(await confirm(`Make these ${changes.length} change${changes.length === 1 ? '' : 's'}?`))) {
      print('Nothing changed.')
      return EXIT.failed
    }
    await applyAll(changes, true)
    print(`\n${name} is no longer updated by Upkeep. Its checkout, units and data are as they were.`)
    print(`Its update state (history, backups, update-installed.json) is kept in ${stateDir}: rm -r ${stateDir} when you no longer need it.`)
    return EXIT.ok
  } catch (err) {
    return fail(err, false)
  }
}
