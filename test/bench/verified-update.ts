// Section 4 of `npm run bench` (also alone: `npm run bench:verified`, as root): one release of
// Upkeep itself (v1.1.0, made by deploy/release.ts prepare and signed with a throwaway key),
// installed three ways side by side, each on its own installed Upkeep in process mode:
//   artifact          from its signed artifact; npm's registry unreachable, no npm or compiler on PATH
//   source, same lock from source (--from-source) with the lockfile of the running 1.0.0: installed
//                     dependencies reused; the registry unreachable too
//   source, new lock  from source, running 0.9.0 whose lockfile differs: a fresh npm ci (warm npm cache)
// Printed with totals and per-step times, never asserted; target ≤ 3 s for the artifact.
import { execFileSync } from 'node:child_process'
import { chmod, cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import os, { tmpdir } from 'node:os'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { saveDependencies } from '../../updater/artifacts/dependency-reuse'
import { createRunTool } from '../../updater/artifacts/run-tool'
import { UPKEEP_DEPENDENCIES } from '../../updater/shared/apps/builtin'
import type { HistoryEntry } from '../../updater/shared/history'
import type { Journal } from '../../updater/shared/journal'
import { sshKeygen, startFileServer } from '../support/artifacts'
import { OWNER } from '../support/fixture-app'
import { commitAll, copyProject, git } from '../support/git-fixtures'
import { repoRoot } from '../support/paths'
import { artifactOnlyPath, homeWithoutRegistry, pinReleaseKey, prepareRelease, serveRelease } from '../support/release-artifacts'
import { run } from '../support/run'
import { installUpkeep, type UpkeepInstall } from '../support/upkeep-app'

const STEPS = ['preflight', 'backup', 'fetch', 'build', 'switch', 'restart', 'health', 'commit'] as const

/** Upkeep's sources as v0.9.0 (another lockfile: the root package's version differs), v1.0.0 and v1.1.0 (the same lockfile). */
async function benchOrigin(dir: string): Promise<string> {
  const work = path.join(dir, 'origin-work')
  await copyProject(work)
  git(work, ['init', '-q'])
  const edit = async (file: string, change: (v: Record<string, unknown>) => void) => {
    const p = path.join(work, file)
    const before = await readFile(p, 'utf8')
    const value = JSON.parse(before) as Record<string, unknown>
    change(value)
    await writeFile(p, JSON.stringify(value, null, 2) + '\n')
    return () => writeFile(p, before)
  }
  const undo = [
    await edit('package.json', (v) => (v.version = '0.9.0')),
    await edit('package-lock.json', (v) => {
      v.version = '0.9.0'
      ;(v.packages as Record<string, Record<string, unknown>>)['']!.version = '0.9.0'
    }),
  ]
  commitAll(work, 'release 0.9.0')
  git(work, ['tag', '-a', 'v0.9.0', '-m', 'v0.9.0'])
  for (const u of undo) await u()
  for (const tag of ['v1.0.0', 'v1.1.0']) {
    await writeFile(path.join(work, 'CHANGES.txt'), `${tag}\n`)
    commitAll(work, `release ${tag}`)
    git(work, ['tag', '-a', tag, '-m', `${tag}: bench release`])
  }
  const bare = path.join(dir, 'origin.git')
  git(dir, ['clone', '-q', '--bare', work, bare])
  return bare
}

/**
 * The dependency cache as an earlier source update of `tag` leaves it (`.upkeep/deps`): that tag's
 * lockfile and the node_modules `npm ci` makes of it (this checkout's, made by `npm ci` of the
 * same lockfile for the tags that share it).
 */
async function primeDependencyCache(install: UpkeepInstall, origin: string, tag: string): Promise<void> {
  const tree = path.join(install.root, `deps-of-${tag}`)
  await mkdir(tree)
  await writeFile(path.join(tree, 'package-lock.json'), execFileSync('git', ['--git-dir', origin, 'show', `${tag}:package-lock.json`]))
  execFileSync('cp', ['-a', path.join(repoRoot, 'node_modules'), path.join(tree, 'node_modules')])
  const cacheDir = path.join(install.appDir, '.upkeep', 'deps')
  await saveDependencies(createRunTool(), { lockfiles: UPKEEP_DEPENDENCIES.lockfiles, dirs: UPKEEP_DEPENDENCIES.dirs, stagingTree: tree, cacheDir, keep: 3, now: new Date() })
  execFileSync('chown', ['-R', `${OWNER.uid}:${OWNER.gid}`, path.join(install.appDir, '.upkeep')])
  await rm(tree, { recursive: true, force: true })
}

interface Outcome {
  label: string
  wallMs: number
  entry: HistoryEntry
  journal: Journal
}

async function update(label: string, install: UpkeepInstall, args: string[], env: NodeJS.ProcessEnv): Promise<Outcome> {
  const t0 = performance.now()
  const r = await run(process.execPath, [path.join(install.appDir, 'current', 'upkeep.mjs'), 'update', 'v1.1.0', '--yes', '--json', ...args], {
    cwd: install.appDir,
    uid: OWNER.uid,
    gid: OWNER.gid,
    env: { ...install.env, ...env },
    timeoutMs: 900_000,
  })
  const wallMs = performance.now() - t0
  const entry = JSON.parse(r.stdout || '{}') as HistoryEntry
  if (r.code !== 0 || entry.status !== 'complete') throw new Error(`${label}: the update did not complete (exit ${r.code}):\n${r.stdout}\n${r.stderr}`)
  const health = await install.health()
  if (health?.version !== '1.1.0') throw new Error(`${label}: ${health?.version ?? 'nothing'} answers, not 1.1.0`)
  const journal = JSON.parse(await readFile(path.join(install.dataDir, 'update-journal.json'), 'utf8')) as Journal
  return { label, wallMs, entry, journal }
}

const s = (ms: number | undefined) => (ms === undefined ? '—' : `${(ms / 1000).toFixed(2)} s`)

/** What the build step spent its time on: download/verify/unpack, or the dependency install and the build command. */
function buildParts(o: Outcome): [string, number | undefined][] {
  const d = o.journal.steps.find((x) => x.name === 'build')?.detail ?? {}
  const t = d.timings as { signatureMs: number; downloadMs: number; checksumMs: number; unpackMs: number } | undefined
  const deps = d.dependencies as { how: string; durationMs: number } | undefined
  const commands = (d.commands as { argv: string[]; durationMs: number }[] | undefined) ?? []
  const build = commands.filter((c) => c.argv.includes('build')).reduce((n, c) => n + c.durationMs, 0)
  return [
    ['  find + verify SHA256SUMS', t?.signatureMs],
    ['  download the tarball', t?.downloadMs],
    ['  its sha256', t?.checksumMs],
    ['  unpack', t?.unpackMs],
    ['  dependencies (reuse or npm ci)', deps?.durationMs],
    ['  npm run build', commands.length ? build : undefined],
  ]
}

function table(outcomes: Outcome[], line: (s: string) => void): void {
  const rows: [string, ...string[]][] = [['', ...outcomes.map((o) => o.label)]]
  for (const step of STEPS) {
    rows.push([step, ...outcomes.map((o) => s(o.journal.steps.find((x) => x.name === step)?.durationMs))])
    if (step === 'build') {
      const parts = outcomes.map(buildParts)
      parts[0]!.forEach(([name], i) => rows.push([name, ...parts.map((p) => s(p[i]![1]))]))
    }
  }
  rows.push(['outside the steps (2 node starts, lock, exit)', ...outcomes.map((o) => s(o.wallMs - o.entry.durationMs))])
  rows.push(['total (the updater, start to exit)', ...outcomes.map((o) => s(o.wallMs))])
  rows.push(['installed from', ...outcomes.map((o) => {
    const i = o.entry.to.installedFrom
    return !i ? '?' : i.kind === 'artifact' ? 'artifact' : `source, deps ${i.dependencies ?? '?'}`
  })])
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)))
  for (const r of rows) line(`   ${r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]! + 2))).join(' ')}`)
}

/** Runs the section; `root` is a directory the bench removes afterwards. */
export async function benchVerifiedUpdate(root: string, line: (s: string) => void): Promise<void> {
  line('4. one release of Upkeep (v1.1.0, deploy/release.ts prepare, signed), three ways, each on an installed Upkeep (process mode) …')
  const dir = path.join(root, 'verified')
  await mkdir(dir, { recursive: true })
  await chmod(dir, 0o755)
  const origin = await benchOrigin(dir)
  await mkdir(path.join(dir, 'keys'))
  const key = sshKeygen(path.join(dir, 'keys'), 'release')
  line('   preparing the release with deploy/release.ts (npm run build of the tag, pack, SHA256SUMS, ssh-keygen -Y sign) …')
  const { dist } = await prepareRelease({ origin, tag: 'v1.1.0', keyFile: key.file, work: dir })
  const files = await startFileServer()
  const appsDir = path.join(dir, 'apps')
  await pinReleaseKey(appsDir, 'upkeep', key.pub)
  const common = { UPKEEP_ARTIFACTS_URL: await serveRelease(files, 'v1.1.0', dist), UPKEEP_APPS_DIR: appsDir }
  const offline = { HOME: await homeWithoutRegistry(path.join(dir, 'offline-home')), npm_config_registry: 'http://127.0.0.1:9/' }
  // The fresh install gets npm's cache as this machine has it, as a server that ran npm ci before would.
  const warmHome = path.join(dir, 'warm-home')
  await mkdir(warmHome)
  await cp(path.join(os.homedir(), '.npm'), path.join(warmHome, '.npm'), { recursive: true }).catch(() => {})
  execFileSync('chown', ['-R', `${OWNER.uid}:${OWNER.gid}`, warmHome])

  const outcomes: Outcome[] = []
  const one = async (label: string, from: string, prime: boolean, args: string[], env: NodeJS.ProcessEnv) => {
    const install = await installUpkeep(origin, from, {})
    try {
      if (prime) await primeDependencyCache(install, origin, from)
      outcomes.push(await update(label, install, args, env))
    } finally {
      await install.stop()
    }
  }
  try {
    line('   artifact: 1.0.0 → 1.1.0, PATH = node, git, ssh-keygen only; npm registry http://127.0.0.1:9 …')
    await one('artifact', 'v1.0.0', false, [], { ...common, ...offline, PATH: await artifactOnlyPath(path.join(dir, 'bin')) })
    line('   source, same lockfile: 1.0.0 → 1.1.0 --from-source, dependency cache of 1.0.0, registry unreachable …')
    await one('source, same lock', 'v1.0.0', true, ['--from-source'], { ...common, ...offline })
    line('   source, changed lockfile: 0.9.0 → 1.1.0 --from-source, dependency cache of 0.9.0, registry reachable, warm npm cache …')
    await one('source, new lock', 'v0.9.0', true, ['--from-source'], { ...common, HOME: warmHome })
  } finally {
    await files.close()
  }
  line(`   ${os.availableParallelism()} cores, load ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`)
  table(outcomes, line)
  const artifact = outcomes[0]!
  line(`   the artifact update needed neither npm's registry nor npm or a compiler (both out of reach) and took ${s(artifact.wallMs)}   target ≤ 3 s: ${artifact.wallMs <= 3000 ? 'meets target' : 'MISSES target'}`)
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const root = await mkdtemp(path.join(tmpdir(), 'upkeep-bench-verified-'))
  await chmod(root, 0o755)
  try {
    await benchVerifiedUpdate(root, (l) => process.stdout.write(l + '\n'))
  } finally {
    await rm(root, { recursive: true, force: true })
  }
}
