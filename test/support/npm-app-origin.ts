import { execFile } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { chmod, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { git } from './git-fixtures'

// A third-party app as a git origin: each published version of an npm package, exactly as the
// registry serves it, committed and tagged `vX.Y.Z` — the history an operator would have if the
// app's authors tagged their releases in git.

const execFileP = promisify(execFile)

/** Where tarballs are kept between test runs, so a second run downloads nothing. */
export const DEFAULT_TARBALL_CACHE = path.join(tmpdir(), 'upkeep-npm-tarballs')

const PLAIN_SEMVER = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$/

/** `1.2.3` or `v1.2.3` → `1.2.3`; anything else (a prerelease, a range, a tag name) throws. */
export function plainVersion(version: string): string {
  const v = version.startsWith('v') ? version.slice(1) : version
  if (!PLAIN_SEMVER.test(v)) throw new Error(`${JSON.stringify(version)} is not a plain X.Y.Z version; name a published release such as 1.4.0 (prereleases and ranges have no tag here)`)
  return v
}

/** npm's environment without the npm_config_* (and other npm_*) variables `npx vitest` sets. */
function npmEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith('npm_')))
}

async function npm(args: string[], cwd: string): Promise<string> {
  try {
    const { stdout } = await execFileP('npm', args, { cwd, env: npmEnv(), maxBuffer: 64 << 20 })
    return stdout
  } catch (err) {
    const e = err as { stderr?: string; message: string }
    throw new Error(`npm ${args.join(' ')} failed: ${(e.stderr ?? e.message).trim().split('\n').slice(-10).join('\n')}`)
  }
}

/** The registry's digest of a tarball: `sha512-<base64>` (or `sha1-<hex>` for packages that predate it). */
async function publishedDigest(pkg: string, version: string): Promise<string> {
  const dist = JSON.parse(await npm(['view', `${pkg}@${version}`, 'dist', '--json'], tmpdir())) as { integrity?: string; shasum?: string }
  if (dist.integrity?.startsWith('sha512-')) return dist.integrity
  if (dist.shasum) return `sha1-${dist.shasum}`
  throw new Error(`the registry gives no digest for ${pkg}@${version}`)
}

function digestOf(content: Buffer, like: string): string {
  return like.startsWith('sha1-') ? `sha1-${createHash('sha1').update(content).digest('hex')}` : `sha512-${createHash('sha512').update(content).digest('base64')}`
}

/**
 * The tarball of `pkg@version` in `cacheDir`, downloaded with `npm pack` when it is not there yet
 * and checked against the registry's digest (kept beside it, so a cached tarball is checked again
 * on each use without the network). Returns its path.
 */
export async function npmTarball(pkg: string, version: string, cacheDir = DEFAULT_TARBALL_CACHE): Promise<string> {
  const v = plainVersion(version)
  await mkdir(cacheDir, { recursive: true })
  const file = path.join(cacheDir, `${pkg.replace(/^@/, '').replace('/', '__')}-${v}.tgz`)
  const digestFile = `${file}.digest`
  if (existsSync(file) && existsSync(digestFile)) {
    const expected = (await readFile(digestFile, 'utf8')).trim()
    if (digestOf(await readFile(file), expected) === expected) return file
    await rm(file, { force: true }) // corrupt or truncated: fetch it again
  }
  const expected = await publishedDigest(pkg, v)
  const scratch = path.join(cacheDir, `.pack-${randomBytes(6).toString('hex')}`)
  await mkdir(scratch)
  try {
    const packed = JSON.parse(await npm(['pack', `${pkg}@${v}`, '--json', '--pack-destination', scratch], scratch)) as { filename: string }[]
    const got = path.join(scratch, packed[0]!.filename)
    const actual = digestOf(await readFile(got), expected)
    if (actual !== expected) throw new Error(`${pkg}@${v}: the tarball's digest ${actual} is not the registry's ${expected}`)
    await writeFile(digestFile, expected + '\n')
    // Renamed into place so a concurrent run never reads half a file.
    await rename(got, file)
  } finally {
    await rm(scratch, { recursive: true, force: true })
  }
  return file
}

/** The paths in a tarball (files only), relative to its top directory (`package/` as npm packs it). */
export async function tarballFiles(tarball: string): Promise<string[]> {
  const { stdout } = await execFileP('tar', ['-tzf', tarball], { maxBuffer: 64 << 20 })
  return stdout
    .split('\n')
    .filter((l) => l && !l.endsWith('/'))
    .map((l) => l.slice(l.indexOf('/') + 1))
    .sort()
}

async function emptyExceptGit(dir: string): Promise<void> {
  for (const name of await readdir(dir)) if (name !== '.git') await rm(path.join(dir, name), { recursive: true, force: true })
}

export interface NpmAppOrigin {
  /** The bare repository to clone from. */
  bare: string
  /** Commit of each tag. */
  commits: Record<string, string>
  /** `v<version>` for each version, in the order given. */
  tags: string[]
  /** The cached tarball each tag was made from. */
  tarballs: Record<string, string>
}

/**
 * A bare origin in `dir/<name>.git` whose tag `vX.Y.Z` holds exactly the files of `pkg@X.Y.Z` as
 * the registry serves them: nothing added, nothing changed, nothing left out (files the package's
 * own .gitignore names are added anyway). One commit per version, in the order given.
 */
export async function createNpmAppOrigin(dir: string, opts: { pkg: string; versions: readonly string[]; cacheDir?: string }): Promise<NpmAppOrigin> {
  const versions = opts.versions.map(plainVersion)
  const name = opts.pkg.replace(/^@/, '').replace('/', '-')
  await mkdir(dir, { recursive: true })
  await chmod(dir, 0o755)
  const work = path.join(dir, `${name}-work`)
  await mkdir(work, { recursive: true })
  git(work, ['init', '-q'])
  // Store the bytes as they are: no line-ending or filter conversion from a .gitattributes the
  // package may ship (info/attributes takes precedence over the tree's own).
  await writeFile(path.join(work, '.git', 'info', 'attributes'), '* -text -filter -ident !eol !working-tree-encoding\n')
  const commits: Record<string, string> = {}
  const tarballs: Record<string, string> = {}
  const tags: string[] = []
  for (const v of versions) {
    const tarball = await npmTarball(opts.pkg, v, opts.cacheDir)
    const tag = `v${v}`
    await emptyExceptGit(work)
    await execFileP('tar', ['-xzf', tarball, '-C', work, '--strip-components=1', '--no-same-owner'])
    git(work, ['-c', 'core.autocrlf=false', 'add', '--all', '--force', '.'])
    git(work, ['commit', '-q', '--allow-empty', '-m', `${opts.pkg} ${v}`, '-m', 'The package as the npm registry serves it.'])
    git(work, ['tag', '-a', tag, '-m', `${opts.pkg} ${v}`])
    commits[tag] = git(work, ['rev-parse', 'HEAD'])
    tarballs[tag] = tarball
    tags.push(tag)
  }
  const bare = path.join(dir, `${name}.git`)
  git(dir, ['clone', '-q', '--bare', work, bare])
  return { bare, commits, tags, tarballs }
}
