// `npm run bench:deps`: a source build's dependency install, fresh vs reused (printed, never asserted).
// Installs this project's own package-lock.json with `npm ci` (npm's cache as it is on this
// machine), keeps it in a dependency cache, then reuses it for a second tree with each copy method.
// Reflinks need a filesystem that has them (btrfs, XFS): run with TMPDIR on one to measure them.
import { execFileSync, spawnSync } from 'node:child_process'
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { reuseDependencies, saveDependencies, type CopyMethod } from '../../updater/artifacts/dependency-reuse'
import { createRunTool } from '../../updater/artifacts/run-tool'
import { repoRoot } from '../support/paths'

const line = (s: string) => process.stdout.write(s + '\n')
const spec = { lockfiles: ['package-lock.json'], dirs: ['node_modules'] }
const run = createRunTool()

async function checkout(root: string, name: string): Promise<string> {
  const dir = path.join(root, name)
  await mkdir(dir)
  for (const f of ['package.json', 'package-lock.json']) await copyFile(path.join(repoRoot, f), path.join(dir, f))
  return dir
}

async function timed<T>(fn: () => Promise<T> | T): Promise<[T, number]> {
  const t0 = performance.now()
  const result = await fn()
  return [result, (performance.now() - t0) / 1000]
}

async function main(): Promise<void> {
  const root = await mkdtemp(path.join(tmpdir(), 'upkeep-bench-deps-'))
  try {
    const fsType = execFileSync('stat', ['-f', '-c', '%T', root], { encoding: 'utf8' }).trim()
    line(`dependency reuse on ${fsType} (${root})`)
    const fresh = await checkout(root, 'fresh')
    const [ci, ciSecs] = await timed(() => spawnSync('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: fresh, encoding: 'utf8' }))
    if (ci.status !== 0) throw new Error(`npm ci failed: ${ci.stderr}`)
    const files = execFileSync('find', [path.join(fresh, 'node_modules'), '-type', 'f'], { encoding: 'utf8', maxBuffer: 64 << 20 }).split('\n').filter(Boolean).length
    const size = execFileSync('du', ['-sh', path.join(fresh, 'node_modules')], { encoding: 'utf8' }).split('\t')[0]
    line(`  node_modules: ${files} files, ${size}`)
    line(`  fresh npm ci (warm npm cache)            ${ciSecs.toFixed(2)} s`)

    for (const method of ['reflink', 'hardlink', 'copy'] as CopyMethod[]) {
      const cacheDir = path.join(root, `cache-${method}`)
      const from = await checkout(root, `installed-${method}`)
      execFileSync('cp', ['-a', path.join(fresh, 'node_modules'), path.join(from, 'node_modules')])
      const [saved, saveSecs] = await timed(() => saveDependencies(run, { ...spec, stagingTree: from, cacheDir, keep: 3, now: new Date(), methods: [method] }).catch((e: Error) => e))
      if (saved instanceof Error) {
        line(`  ${method.padEnd(8)} not available here: ${saved.message.split(': ').slice(-1)[0]}`)
        continue
      }
      const staging = await checkout(root, `staging-${method}`)
      const [result, reuseSecs] = await timed(() => reuseDependencies(run, { ...spec, previousTree: saved!, stagingTree: staging, methods: [method] }))
      const check = spawnSync('node', ['-e', 'require("semver"); require("hono"); console.log("ok")'], { cwd: staging, encoding: 'utf8' })
      line(`  ${method.padEnd(8)} save into the cache ${saveSecs.toFixed(2).padStart(6)} s   reuse into staging ${reuseSecs.toFixed(2).padStart(6)} s   (${result.reused ? 'reused' : `not reused: ${result.reason}`}; modules load: ${check.stdout.trim() || check.stderr.trim()})`)
    }
  } finally {
    await rm(root, { recursive: true, force: true })
  }
}

await main()
