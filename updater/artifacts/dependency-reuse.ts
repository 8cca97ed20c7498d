import { createHash } from 'node:crypto'
import { copyFile, lstat, mkdir, readdir, readFile, rename, rm, stat, utimes } from 'node:fs/promises'
import path from 'node:path'
import type { RunTool } from './run-tool'

/**
 * Reusing a source build's installed dependencies when its lockfile did not change.
 *
 * The cache: `<cacheDir>/<key>/` holds the lockfiles a dependency install was made from and the
 * installed directories (`node_modules`), where `key` is the sha256 of the lockfiles and the
 * environment (Node's ABI, platform, architecture: native addons are built for them). An entry
 * is created under a temporary name and renamed when complete, so one that exists is whole.
 *
 * Never shared mutable state: directories are always fresh copies; files are either reflinked
 * (copy-on-write: each tree writes its own blocks) or hardlinked, and a hardlinked file is made
 * read-only first (`chmod a-w`). Builds write new files (caches, output) or replace files by
 * rename, which never touches the shared inode; a tool that opened a dependency's file for
 * writing in place would fail with EACCES instead of changing the cache and every later build.
 */
export interface DependencySpec {
  /** Files whose bytes decide whether installed dependencies can be reused, e.g. ['package-lock.json']. */
  lockfiles: string[]
  /** The directories the install creates, e.g. ['node_modules']. */
  dirs: string[]
}

export type CopyMethod = 'reflink' | 'hardlink' | 'copy'
export const COPY_METHODS: readonly CopyMethod[] = ['reflink', 'hardlink', 'copy']

export type ReuseResult = { reused: true; method: CopyMethod } | { reused: false; reason: string }

/** What native dependencies are built for; a change means a fresh install. */
export function defaultEnvironment(): string {
  return `${process.platform}-${process.arch}-node-abi${process.versions.modules}`
}

const exists = (p: string) => lstat(p).then(() => true, () => false)
const isName = (n: string) => n.length > 0 && !n.includes('/') && n !== '.' && n !== '..'

/** The cache key of `tree`'s lockfiles, or undefined when it has none of them. */
export async function lockfileKey(tree: string, lockfiles: readonly string[], environment = defaultEnvironment()): Promise<string | undefined> {
  const hash = createHash('sha256').update(`${environment}\0`)
  let found = 0
  for (const name of lockfiles) {
    const bytes = await readFile(path.join(tree, name)).catch(() => undefined)
    if (bytes) found++
    hash.update(`${name}\0${bytes ? `${bytes.length}\0` : 'absent\0'}`)
    if (bytes) hash.update(bytes)
  }
  return found ? hash.digest('hex') : undefined
}

/** The cache entry made from the same lockfiles as `tree`'s, if there is one. */
export async function findCachedDependencies(cacheDir: string, tree: string, spec: DependencySpec, environment?: string): Promise<string | undefined> {
  const key = await lockfileKey(tree, spec.lockfiles, environment)
  if (!key) return undefined
  const entry = path.join(cacheDir, key)
  return (await exists(entry)) ? entry : undefined
}

/**
 * Copies `previousTree`'s installed dependency dirs into `stagingTree` when every lockfile is
 * byte-identical in both (present in both, or absent in both, and at least one present), so
 * the install command can be skipped. `methods` are tried in order (default reflink, hardlink, copy).
 */
export async function reuseDependencies(
  run: RunTool,
  o: DependencySpec & { previousTree: string; stagingTree: string; methods?: readonly CopyMethod[] },
): Promise<ReuseResult> {
  if (![...o.lockfiles, ...o.dirs].every(isName)) throw new Error('lockfiles and dirs must be plain names')
  let present = 0
  for (const name of o.lockfiles) {
    const [a, b] = await Promise.all([readFile(path.join(o.previousTree, name)).catch(() => undefined), readFile(path.join(o.stagingTree, name)).catch(() => undefined)])
    if (!a && !b) continue
    if (!a || !b || !a.equals(b)) return { reused: false, reason: `${name} changed` }
    present++
  }
  if (!present) return { reused: false, reason: `no lockfile (${o.lockfiles.join(', ')})` }
  for (const dir of o.dirs) {
    if (!(await stat(path.join(o.previousTree, dir)).then((s) => s.isDirectory(), () => false))) return { reused: false, reason: `the previous build has no ${dir}` }
    if (await exists(path.join(o.stagingTree, dir))) return { reused: false, reason: `staging already has ${dir}` }
  }
  let method: CopyMethod | undefined
  try {
    for (const dir of o.dirs) method = await copyTree(run, path.join(o.previousTree, dir), path.join(o.stagingTree, dir), o.methods ?? COPY_METHODS)
  } catch (err) {
    // A fresh install is always possible: reuse is only a shortcut.
    for (const dir of o.dirs) await rm(path.join(o.stagingTree, dir), { recursive: true, force: true })
    return { reused: false, reason: (err as Error).message }
  }
  return { reused: true, method: method! }
}

/**
 * Keeps `stagingTree`'s freshly installed dependencies in the cache (call it after the install,
 * before the build, so build caches are not kept), then prunes the cache to the `keep` most
 * recently used entries. `now` stamps the entry as used. Returns the entry's path.
 */
export async function saveDependencies(
  run: RunTool,
  o: DependencySpec & { stagingTree: string; cacheDir: string; keep: number; now: Date; environment?: string; methods?: readonly CopyMethod[] },
): Promise<string | undefined> {
  const key = await lockfileKey(o.stagingTree, o.lockfiles, o.environment)
  if (!key) return undefined
  await mkdir(o.cacheDir, { recursive: true })
  const entry = path.join(o.cacheDir, key)
  if (!(await exists(entry))) {
    const tmp = path.join(o.cacheDir, `.${key}.tmp-${process.pid}`)
    await rm(tmp, { recursive: true, force: true })
    await mkdir(tmp)
    try {
      for (const name of o.lockfiles) {
        if (await exists(path.join(o.stagingTree, name))) await copyFile(path.join(o.stagingTree, name), path.join(tmp, name))
      }
      for (const dir of o.dirs) await copyTree(run, path.join(o.stagingTree, dir), path.join(tmp, dir), o.methods ?? COPY_METHODS)
      await rename(tmp, entry)
    } catch (err) {
      await rm(tmp, { recursive: true, force: true })
      throw err
    }
  }
  await utimes(entry, o.now, o.now)
  await pruneDependencyCache(o.cacheDir, o.keep)
  return entry
}

/** Removes all but the `keep` most recently used entries, and leftovers of interrupted saves. */
export async function pruneDependencyCache(cacheDir: string, keep: number): Promise<string[]> {
  const names = await readdir(cacheDir).catch(() => [] as string[])
  const entries: { name: string; used: number }[] = []
  const removed: string[] = []
  for (const name of names) {
    if (/^\.[0-9a-f]{64}\.tmp-\d+$/.test(name) && !name.endsWith(`.tmp-${process.pid}`)) {
      await rm(path.join(cacheDir, name), { recursive: true, force: true })
      removed.push(name)
    } else if (/^[0-9a-f]{64}$/.test(name)) {
      entries.push({ name, used: (await stat(path.join(cacheDir, name))).mtimeMs })
    }
  }
  entries.sort((a, b) => b.used - a.used)
  for (const e of entries.slice(Math.max(keep, 0))) {
    await rm(path.join(cacheDir, e.name), { recursive: true, force: true })
    removed.push(e.name)
  }
  return removed
}

/** Copies a directory tree with the first method that works here (reflinks need btrfs, XFS…; hardlinks the same filesystem). */
async function copyTree(run: RunTool, from: string, to: string, methods: readonly CopyMethod[]): Promise<CopyMethod> {
  const errors: string[] = []
  for (const method of methods) {
    if (method === 'hardlink') {
      // Shared inodes must not be writable: see the module comment.
      const ro = await run('find', [from, '-type', 'f', '-perm', '/222', '-exec', 'chmod', 'a-w', '{}', '+'])
      if (ro.code !== 0) {
        errors.push(`hardlink: cannot make files read-only: ${ro.stderr.trim()}`)
        continue
      }
    }
    const args = method === 'reflink' ? ['-a', '--reflink=always'] : method === 'hardlink' ? ['-a', '-l'] : ['-a']
    const res = await run('cp', [...args, '--', from, to])
    if (res.code === 0) return method
    errors.push(`${method}: ${res.stderr.trim().split('\n')[0] ?? `cp exited ${res.code}`}`)
    await rm(to, { recursive: true, force: true })
  }
  throw new Error(`cannot copy ${from} to ${to}: ${errors.join('; ')}`)
}
