import { chown, mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { OWNER } from './fixture-app'
import type { FileServer } from './artifacts'
import { git, GIT_ENV } from './git-fixtures'
import { repoRoot, tsxBin } from './paths'
import { run } from './run'

// Upkeep's own signed releases as its release workflow makes them (deploy/release.ts prepare on a
// tag of a throwaway clone), served over HTTP, and what an install needs to take them: the key
// pinned beside the app definitions, and an environment where npm and compilers are out of reach.

/**
 * `npm run release -- prepare --tag TAG` in a fresh clone of `origin` checked out at TAG (this
 * checkout's node_modules linked, untracked), signed with the private key in `keyFile`. Returns
 * the dist directory: upkeep-<version>.tar.gz, SHA256SUMS, SHA256SUMS.sig, NOTES.md.
 */
export async function prepareRelease(o: { origin: string; tag: string; keyFile: string; work: string }): Promise<{ dist: string; stdout: string }> {
  const clone = path.join(o.work, `release-${o.tag}`)
  git(o.work, ['clone', '-q', o.origin, clone])
  git(clone, ['checkout', '-q', '--detach', o.tag])
  await symlink(path.join(repoRoot, 'node_modules'), path.join(clone, 'node_modules'))
  const dist = path.join(o.work, `dist-${o.tag}`)
  const r = await run(tsxBin, ['deploy/release.ts', 'prepare', '--tag', o.tag, '--out', dist, '--require-signature'], {
    cwd: clone,
    env: { PATH: process.env.PATH ?? '', HOME: o.work, ...GIT_ENV, UPKEEP_RELEASE_SIGNING_KEY: await readFile(o.keyFile, 'utf8') },
    timeoutMs: 300_000,
  })
  if (r.code !== 0) throw new Error(`release prepare ${o.tag} failed:\n${r.stdout}\n${r.stderr}`)
  return { dist, stdout: r.stdout }
}

/** Serves a dist directory at `/<tag>/<file>`; returns the URL pattern for UPKEEP_ARTIFACTS_URL. */
export async function serveRelease(server: FileServer, tag: string, dist: string): Promise<string> {
  for (const name of await readdir(dist)) server.files.set(`/${tag}/${name}`, { body: await readFile(path.join(dist, name)) })
  return `${server.url}/{tag}/upkeep-{version}.tar.gz`
}

/** Pins `publicKey` for `app` the way `upkeep app trust` and `install.sh --release-key` leave it: root's, 0644. */
export async function pinReleaseKey(appsDir: string, app: string, publicKey: string): Promise<string> {
  await mkdir(appsDir, { recursive: true, mode: 0o755 })
  const [type, blob] = publicKey.trim().split(/\s+/)
  const file = path.join(appsDir, `${app}.allowed_signers`)
  await writeFile(file, `${app}-release namespaces="upkeep-release,git" ${type} ${blob}\n`, { mode: 0o644 })
  await chown(file, 0, 0)
  return file
}

/**
 * A PATH holding node, git and ssh-keygen only (no npm, no cc, no make): what installing a
 * verified artifact may need. An update that reached for anything else would fail with ENOENT.
 */
export async function artifactOnlyPath(dir: string): Promise<string> {
  await mkdir(dir, { recursive: true, mode: 0o755 })
  for (const cmd of ['node', 'git', 'ssh-keygen']) {
    const found = (await run('sh', ['-c', `command -v ${cmd}`])).stdout.trim()
    if (!found) throw new Error(`${cmd} is not installed`)
    await symlink(found, path.join(dir, cmd))
  }
  return dir
}

/** A HOME for OWNER whose npm config points at a registry that refuses connections. */
export async function homeWithoutRegistry(dir: string): Promise<string> {
  await mkdir(dir, { recursive: true })
  await writeFile(path.join(dir, '.npmrc'), 'registry=http://127.0.0.1:9/\n')
  await chown(dir, OWNER.uid, OWNER.gid)
  await chown(path.join(dir, '.npmrc'), OWNER.uid, OWNER.gid)
  return dir
}
