// An npm package's published versions as tags of a local origin. Downloads the tarballs once
// (kept in the OS temp dir between runs); later runs work from the cache.
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { git } from './git-fixtures'
import { createNpmAppOrigin, DEFAULT_TARBALL_CACHE, npmTarball, plainVersion, tarballFiles, type NpmAppOrigin } from './npm-app-origin'
import { NODE_APP } from './third-party-apps'

const execFileP = promisify(execFile)
const versions = [NODE_APP.versions.install, NODE_APP.versions.next]

let root: string
let origin: NpmAppOrigin

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'upkeep-npm-origin-'))
  origin = await createNpmAppOrigin(root, { pkg: NODE_APP.pkg, versions })
}, 300_000)
afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true })
})

/** path → [mode, blob id] of every file a tag holds. */
function treeOf(tag: string): Map<string, [string, string]> {
  const out = new Map<string, [string, string]>()
  for (const line of git(root, ['--git-dir', origin.bare, 'ls-tree', '-r', '-z', tag]).split('\0').filter(Boolean)) {
    const [meta, file] = line.split('\t') as [string, string]
    const [mode, , id] = meta.split(' ') as [string, string, string]
    out.set(file, [mode, id])
  }
  return out
}

describe('createNpmAppOrigin', () => {
  test('tags vX.Y.Z, annotated, one commit each, in the order given', () => {
    expect(origin.tags).toEqual(versions.map((v) => `v${v}`))
    expect(git(root, ['--git-dir', origin.bare, 'tag', '-l']).split('\n').sort()).toEqual([...origin.tags].sort())
    for (const tag of origin.tags) {
      expect(git(root, ['--git-dir', origin.bare, 'cat-file', '-t', tag])).toBe('tag')
      expect(git(root, ['--git-dir', origin.bare, 'rev-parse', `${tag}^{commit}`])).toBe(origin.commits[tag])
    }
    const [first, second] = origin.tags as [string, string]
    expect(git(root, ['--git-dir', origin.bare, 'rev-parse', `${second}^`])).toBe(origin.commits[first])
  })

  test("each tag's tree is exactly its tarball: the same files, bytes and executable bits", async () => {
    for (const tag of origin.tags) {
      const tarball = origin.tarballs[tag]!
      const files = await tarballFiles(tarball)
      const tree = treeOf(tag)
      expect([...tree.keys()].sort()).toEqual(files)
      const unpacked = await mkdtemp(path.join(root, 'unpacked-'))
      await execFileP('tar', ['-xzf', tarball, '-C', unpacked, '--strip-components=1', '--no-same-owner'])
      for (const file of files) {
        const full = path.join(unpacked, file)
        const blob = (await execFileP('git', ['hash-object', '--no-filters', full])).stdout.trim()
        const executable = ((await stat(full)).mode & 0o111) !== 0
        expect([file, tree.get(file)]).toEqual([file, [executable ? '100755' : '100644', blob]])
      }
      // The package's own version is what the tag says.
      const pkgJson = JSON.parse(git(root, ['--git-dir', origin.bare, 'show', `${tag}:package.json`])) as { name: string; version: string }
      expect(pkgJson).toMatchObject({ name: NODE_APP.pkg, version: tag.slice(1) })
    }
  })

  test('a package whose own .gitignore names some of its files still gets all of them', async () => {
    // Made locally: a .gitignore of the package that ignores one of its own files.
    const dir = await mkdtemp(path.join(root, 'ignored-'))
    const cache = path.join(dir, 'cache')
    const { mkdir } = await import('node:fs/promises')
    await mkdir(path.join(dir, 'pkg', 'package'), { recursive: true })
    await writeFile(path.join(dir, 'pkg', 'package', 'package.json'), '{"name":"ignored-demo","version":"1.0.0"}\n')
    await writeFile(path.join(dir, 'pkg', 'package', '.gitignore'), 'build/\n*.log\n')
    await mkdir(path.join(dir, 'pkg', 'package', 'build'))
    await writeFile(path.join(dir, 'pkg', 'package', 'build', 'app.js'), 'console.log(1)\n')
    await writeFile(path.join(dir, 'pkg', 'package', 'notes.log'), 'kept\n')
    await mkdir(cache)
    const tgz = path.join(cache, 'ignored-demo-1.0.0.tgz')
    await execFileP('tar', ['-czf', tgz, '-C', path.join(dir, 'pkg'), 'package'])
    const content = await readFile(tgz)
    // A cached tarball is trusted only with the digest the registry gave for it.
    await writeFile(`${tgz}.digest`, `sha512-${createHash('sha512').update(content).digest('base64')}\n`)
    const local = await createNpmAppOrigin(path.join(dir, 'origin'), { pkg: 'ignored-demo', versions: ['1.0.0'], cacheDir: cache })
    const files = git(dir, ['--git-dir', local.bare, 'ls-tree', '-r', '--name-only', 'v1.0.0']).split('\n').sort()
    expect(files).toEqual(['.gitignore', 'build/app.js', 'notes.log', 'package.json'])
  })

  test('refuses versions that are not plain X.Y.Z', async () => {
    expect(plainVersion('v5.5.0')).toBe('5.5.0')
    for (const bad of ['5.5', '5.5.0-rc.1', '^5.5.0', 'latest', '05.5.0', '5.5.0+build.1']) {
      expect(() => plainVersion(bad)).toThrow(/not a plain X\.Y\.Z version/)
    }
    await expect(createNpmAppOrigin(path.join(root, 'refused'), { pkg: NODE_APP.pkg, versions: ['5.6.0-beta.1'] })).rejects.toThrow(/not a plain/)
  })

  test('a cached tarball is used again without the registry; a corrupt one is fetched anew', async () => {
    const cached = await npmTarball(NODE_APP.pkg, versions[0]!, DEFAULT_TARBALL_CACHE)
    expect(cached).toBe(origin.tarballs[`v${versions[0]}`])
    const before = await stat(cached)
    // With no npm on PATH, only the cache can answer.
    const savedPath = process.env.PATH
    process.env.PATH = '/nonexistent'
    try {
      expect(await npmTarball(NODE_APP.pkg, versions[0]!, DEFAULT_TARBALL_CACHE)).toBe(cached)
    } finally {
      process.env.PATH = savedPath
    }
    expect((await stat(cached)).mtimeMs).toBe(before.mtimeMs)

    const scratch = await mkdtemp(path.join(root, 'cache-'))
    const copy = path.join(scratch, path.basename(cached))
    await writeFile(copy, (await readFile(cached)).subarray(0, 1000)) // truncated
    await writeFile(`${copy}.digest`, await readFile(`${cached}.digest`))
    const again = await npmTarball(NODE_APP.pkg, versions[0]!, scratch)
    expect(await readFile(again)).toEqual(await readFile(cached))
    expect(existsSync(`${again}.digest`)).toBe(true)
  }, 120_000)
})
