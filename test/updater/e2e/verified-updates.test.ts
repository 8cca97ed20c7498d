import { execFileSync } from 'node:child_process'
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import type { HistoryEntry } from '../../../updater/shared/history'
import type { StatusEvent } from '../../../updater/shared/status'
import { ensureCommand } from '../../support/apt'
import { makeTarGz, sha256, signFile, sshKeygen, startFileServer, type FileServer, type SshKey } from '../../support/artifacts'
import { createFixture, createOrigin, type Fixture } from '../../support/fixture-app'
import { git, GIT_ENV } from '../../support/git-fixtures'

// Issue 13 through the real update steps, on the fixture app (the real CLI, as the app's user):
// releases installed from signed artifacts served over HTTP, hostile ones refused with nothing
// switched and the reason in the history; source builds that require signed tags; dependency
// installs reused while the lockfile stays the same.

let root: string
let f: Fixture
let files: FileServer
let trusted: SshKey
let other: SshKey
const keysDir = () => path.join(root, 'keys')

/** Tags beyond the fixture's own, on a branch from v1.1.0 (a good release): signed or not, by whom. */
const SIGNED: [tag: string, signer: 'trusted' | 'other' | null, lockfile?: string][] = [
  ['v1.5.0', 'trusted'],
  ['v1.6.0', 'other'],
  ['v1.7.0', null],
  ['v1.8.0', 'trusted'],
  ['v1.9.0', 'trusted', 'changed'],
]

async function addSignedTags(origin: string): Promise<void> {
  const work = path.join(root, 'origin-work')
  git(work, ['checkout', '-q', '-b', 'signed', 'v1.1.0'])
  for (const [tag, signer, lockfile] of SIGNED) {
    await writeFile(path.join(work, 'CHANGES.txt'), `${tag}\n`)
    if (lockfile) {
      const lock = JSON.parse(await readFile(path.join(work, 'package-lock.json'), 'utf8')) as { packages: Record<string, Record<string, unknown>> }
      lock.packages['']!.description = lockfile
      await writeFile(path.join(work, 'package-lock.json'), JSON.stringify(lock, null, 2) + '\n')
    }
    git(work, ['add', '-A'])
    git(work, ['commit', '-q', '-m', `release ${tag}`])
    const key = signer === 'trusted' ? trusted : signer === 'other' ? other : undefined
    git(work, key ? ['-c', 'gpg.format=ssh', '-c', `user.signingkey=${key.file}`, 'tag', '-s', tag, '-m', tag] : ['tag', '-a', tag, '-m', tag])
  }
  git(work, ['push', '-q', origin, ...SIGNED.map(([t]) => `refs/tags/${t}`)])
}

/** A release of the fixture as its maintainer publishes it: the build under fixture-<version>/, SHA256SUMS, its signature. */
async function publish(origin: string): Promise<{ tarball: Buffer; sums: string; sig: string }> {
  const clone = path.join(root, 'release-clone')
  git(root, ['clone', '-q', origin, clone])
  git(clone, ['checkout', '-q', 'v1.1.0'])
  const dist = path.join(root, 'dist')
  await mkdir(dist)
  execFileSync(process.execPath, ['build.mjs', '--out', path.join(dist, 'fixture-1.1.0')], { cwd: clone, env: { ...process.env, ...GIT_ENV }, stdio: 'ignore' })
  execFileSync('tar', ['-C', dist, '-czf', path.join(dist, 'fixture-1.1.0.tar.gz'), 'fixture-1.1.0'])
  const tarball = await readFile(path.join(dist, 'fixture-1.1.0.tar.gz'))
  const sums = `${sha256(tarball)}  fixture-1.1.0.tar.gz\n`
  await writeFile(path.join(dist, 'SHA256SUMS'), sums)
  return { tarball, sums, sig: await signFile(trusted, path.join(dist, 'SHA256SUMS')) }
}

/** Serves a release under /<name>/v1.1.0/: the tarball, SHA256SUMS and (when given) its signature. */
function serve(name: string, r: { tarball: Buffer; sums: string; sig?: string }): string {
  files.files.set(`/${name}/v1.1.0/fixture-1.1.0.tar.gz`, { body: r.tarball })
  files.files.set(`/${name}/v1.1.0/SHA256SUMS`, { body: Buffer.from(r.sums) })
  if (r.sig) files.files.set(`/${name}/v1.1.0/SHA256SUMS.sig`, { body: Buffer.from(r.sig) })
  return `${files.url}/${name}/{tag}/fixture-{version}.tar.gz`
}

async function signedSums(key: SshKey, tarball: Buffer, name: string): Promise<{ sums: string; sig: string }> {
  const file = path.join(root, `SHA256SUMS-${name}`)
  const sums = `${sha256(tarball)}  fixture-1.1.0.tar.gz\n`
  await writeFile(file, sums)
  return { sums, sig: await signFile(key, file) }
}

async function snapshot() {
  return {
    health: await f.health(),
    current: await f.currentTarget(),
    head: f.head(),
    data: await f.dataDigest(),
    releases: (await readdir(path.join(f.appDir, '.upkeep', 'releases'))).sort(),
    staging: await readdir(path.join(f.appDir, '.upkeep', 'staging')).catch(() => []),
  }
}

async function update(args: string[]): Promise<{ code: number | null; entry: HistoryEntry; stderr: string }> {
  const r = await f.upkeep(['update', ...args, '--yes', '--json'])
  return { code: r.code, entry: JSON.parse(r.stdout) as HistoryEntry, stderr: r.stderr }
}

async function events(): Promise<StatusEvent[]> {
  return (await readFile(f.paths.status, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as StatusEvent)
}

const artifactsAt = (url: string | undefined) =>
  f.define((d) => {
    if (url) d.artifacts = { url }
    else delete d.artifacts
  })

beforeAll(async () => {
  ensureCommand('ssh-keygen', ['openssh-client'], { purpose: 'signed releases' })
  root = await mkdtemp(path.join(tmpdir(), 'upkeep-verified-'))
  await chmod(root, 0o755)
  await mkdir(keysDir())
  trusted = sshKeygen(keysDir(), 'trusted')
  other = sshKeygen(keysDir(), 'other')
  const origin = await createOrigin(root)
  await addSignedTags(origin)
  const good = await publish(origin)
  files = await startFileServer()
  serve('good', good)
  serve('unsigned', { tarball: good.tarball, sums: good.sums })
  serve('other-key', { tarball: good.tarball, ...(await signedSums(other, good.tarball, 'other')) })
  // The signed SHA256SUMS of the good release beside a tarball that is not that release.
  serve('tampered', { ...good, tarball: Buffer.concat([good.tarball.subarray(0, good.tarball.length - 8), Buffer.alloc(8)]) })
  // Signed by the trusted key and checksummed, but an entry climbs out of the release.
  const escaping = await makeTarGz([
    { name: 'fixture-1.1.0/', type: 'directory' },
    { name: 'fixture-1.1.0/app.mjs', content: 'console.log("hi")\n' },
    { name: 'fixture-1.1.0/../../../data/evil.mjs', content: 'pwned\n' },
  ])
  serve('escaping', { tarball: escaping, ...(await signedSums(trusted, escaping, 'escaping')) })
  f = await createFixture(origin)
  // Pinned the way an operator does it: root's file beside the definition.
  const pinned = await f.upkeep(['app', 'trust', 'fixture', '--key', `${trusted.file}.pub`])
  expect(pinned.code, pinned.stderr).toBe(0)
}, 180_000)

afterAll(async () => {
  await f?.stop()
  await files?.close()
  await rm(root, { recursive: true, force: true })
})

describe('hostile artifacts through the update steps: refused in build, nothing switched, the history says why', () => {
  test.each([
    ['a tarball that is not the one SHA256SUMS lists', 'tampered', 'CHECKSUM_MISMATCH', /sha256/],
    ['no signature', 'unsigned', 'SIGNATURE_MISSING', /is not signed: no signature was published/],
    ['a signature by a key that is not pinned', 'other-key', 'UNTRUSTED_SIGNER', /is signed by key SHA256:\S+, which is not pinned for this app/],
    ['a signed archive with an entry outside the release', 'escaping', 'UNSAFE_ARCHIVE', /a "\.\." component.*nothing was unpacked/],
  ] as const)('%s: %s', async (_what, name, code, message) => {
    await artifactsAt(`${files.url}/${name}/{tag}/fixture-{version}.tar.gz`)
    const before = await snapshot()
    const { code: exit, entry } = await update(['v1.1.0'])
    expect(exit).toBe(1)
    expect(entry).toMatchObject({ status: 'failed', to: { version: '1.1.0' }, error: { code, step: 'build' } })
    expect(entry.error!.message).toMatch(message)
    expect(entry.error!.hint).toBeTruthy()
    expect(entry.steps.map((s) => `${s.name}:${s.status}`)).toEqual(['preflight:finished', 'backup:finished', 'fetch:finished', 'build:failed'])
    expect(await snapshot()).toEqual(before)
    // Nothing of the archive landed anywhere, inside the checkout or beside it.
    await expect(readFile(path.join(f.dataDir, 'evil.mjs'))).rejects.toThrow()
    const history = await f.upkeep(['history', '-n', '1'])
    expect(history.stdout.split('\n')[1]).toMatch(new RegExp(`1\\.0\\.0 → 1\\.1\\.0\\s+failed\\s+.*${code}`))
  })
})

describe('a release from its signed artifact', () => {
  test('1.0.0 → 1.1.0: downloaded with progress, verified against the pinned key, unpacked, switched, healthy', async () => {
    await artifactsAt(`${files.url}/good/{tag}/fixture-{version}.tar.gz`)
    const seen = files.requests.length
    const { code, entry, stderr } = await update(['v1.1.0'])
    expect(code, stderr).toBe(0)
    expect(entry).toMatchObject({ status: 'complete', to: { version: '1.1.0', installedFrom: { kind: 'artifact', signer: 'fixture-release', fingerprint: trusted.fingerprint } } })
    expect(await f.health()).toEqual({ status: 200, version: '1.1.0' })
    expect(await f.currentTarget()).toBe('.upkeep/releases/v1.1.0')
    expect(files.requests.slice(seen).map((r) => r.path)).toEqual(['/good/v1.1.0/SHA256SUMS', '/good/v1.1.0/SHA256SUMS.sig', '/good/v1.1.0/fixture-1.1.0.tar.gz'])
    const live = await events()
    const progress = live.filter((e) => e.type === 'progress')
    expect(progress.at(-1)).toMatchObject({ step: 'build', unit: 'bytes', done: expect.any(Number), total: expect.any(Number) })
    expect(live.some((e) => e.type === 'log' && e.step === 'build' && /^downloaded .* \(100%\)$/.test(e.message))).toBe(true)
    expect(live.some((e) => e.type === 'log' && e.message === `SHA256SUMS is signed by fixture-release (${trusted.fingerprint})`)).toBe(true)
    // No source build: no worktree, no build command.
    expect(live.filter((e) => e.type === 'log' && e.message.startsWith('$ '))).toEqual([])
    const manifest = JSON.parse(await readFile(path.join(f.appDir, 'current', 'upkeep-release.json'), 'utf8'))
    expect(manifest).toMatchObject({ tag: 'v1.1.0', serverEntry: 'app.mjs', installedFrom: { kind: 'artifact', fingerprint: trusted.fingerprint } })
    expect(JSON.parse(await readFile(f.paths.installed, 'utf8'))).toMatchObject({ version: '1.1.0', installedFrom: { kind: 'artifact', signer: 'fixture-release' } })
    const history = await f.upkeep(['history', '-n', '1'])
    expect(history.stdout).toMatch(/1\.0\.0 → 1\.1\.0\s+complete\s+\S+\s+artifact, verified by fixture-release \(SHA256:/)
    expect(await readdir(path.join(f.appDir, '.upkeep'))).not.toContain('downloads')
  })
})

describe('GitHub release assets and the release checks’ rate limit', () => {
  test('while the release checks are rate-limited, the update asks GitHub nothing and says when to try again', async () => {
    const until = new Date(Date.now() + 45 * 60_000).toISOString()
    await mkdir(path.dirname(f.paths.releaseCache), { recursive: true })
    await writeFile(f.paths.releaseCache, JSON.stringify({ repo: 'acme/fixture', channel: 'stable', checkedAt: new Date().toISOString(), latest: null, releases: [], via: 'api', rateLimitedUntil: until }))
    await f.define((d) => (d.artifacts = { github: 'acme/fixture' }))
    try {
      const before = await snapshot()
      // Nothing answers there: a request would fail otherwise, not with RATE_LIMITED.
      const r = await f.upkeep(['update', 'v1.2.0', '--yes', '--json'], { GITHUB_API_URL: 'http://127.0.0.1:9' })
      const entry = JSON.parse(r.stdout) as HistoryEntry
      expect(r.code).toBe(1)
      expect(entry).toMatchObject({ status: 'failed', error: { code: 'RATE_LIMITED', step: 'build', message: `GitHub rate limit reached; no request before ${until}` } })
      expect(entry.error!.hint).toContain(`try the update again after ${until}`)
      expect(entry.error!.hint).toContain('or build it from its tag\'s source instead: upkeep --app fixture update v1.2.0 --from-source')
      expect(await snapshot()).toEqual(before)
    } finally {
      await rm(f.paths.releaseCache, { force: true })
      await f.define((d) => delete d.artifacts)
    }
  })
})

describe('source builds that require signed tags', () => {
  const requireSigned = () =>
    f.define((d) => {
      delete d.artifacts
      d.requireSignedTags = true
      // A dependency install of its own, so reuse shows: it writes node_modules/dep and says so.
      d.dependencies = {
        lockfiles: ['package-lock.json'],
        dirs: ['node_modules'],
        install: ['node', '-e', "const fs = require('fs'); fs.mkdirSync('node_modules/dep', { recursive: true }); fs.writeFileSync('node_modules/dep/index.js', 'module.exports = 1\\n'); console.log('installed dep')"],
      }
    })

  test.each([
    ['a tag signed by a key that is not pinned', 'v1.6.0', 'UNTRUSTED_SIGNER', /tag v1\.6\.0 is signed by key SHA256:\S+, which is not pinned/],
    ['an unsigned (annotated) tag', 'v1.7.0', 'TAG_NOT_SIGNED', /tag v1\.7\.0 is not signed; the app requires signed tags/],
  ] as const)('%s is refused before anything is built', async (_what, tag, code, message) => {
    await requireSigned()
    const before = await snapshot()
    const { code: exit, entry } = await update([tag])
    expect(exit).toBe(1)
    expect(entry).toMatchObject({ status: 'failed', error: { code, step: 'build' } })
    expect(entry.error!.message).toMatch(message)
    expect(await snapshot()).toEqual(before)
    // No build command ran, not even the dependency install.
    const live = await events()
    expect(live.filter((e) => e.type === 'log' && (e.message.startsWith('$ ') || e.message.startsWith('installing dependencies')))).toEqual([])
  })

  test('a tag signed by the pinned key builds: its signer and the fresh dependency install are recorded', async () => {
    await requireSigned()
    const { code, entry, stderr } = await update(['v1.5.0'])
    expect(code, stderr).toBe(0)
    expect(entry.to.installedFrom).toEqual({ kind: 'source', tag: { signed: true, signer: 'fixture-release', fingerprint: trusted.fingerprint }, dependencies: 'installed' })
    expect(await f.health()).toEqual({ status: 200, version: '1.5.0' })
    const live = await events()
    expect(live.some((e) => e.type === 'log' && e.message === `tag v1.5.0 is signed by fixture-release (${trusted.fingerprint})`)).toBe(true)
    expect(live.some((e) => e.type === 'log' && e.message === 'installed dep')).toBe(true)
  })

  test('the next tag, with the same lockfile, reuses the installed dependencies instead of installing', async () => {
    const { code, entry, stderr } = await update(['v1.8.0'])
    expect(code, stderr).toBe(0)
    expect(entry.to.installedFrom).toMatchObject({ kind: 'source', tag: { signed: true }, dependencies: 'reused' })
    const live = await events()
    expect(live.some((e) => e.type === 'log' && /^package-lock\.json unchanged: reusing the installed node_modules \((reflink|hardlink|copy)\)/.test(e.message))).toBe(true)
    expect(live.some((e) => e.type === 'log' && e.message === 'installed dep')).toBe(false)
    const history = await f.upkeep(['history', '-n', '1'])
    expect(history.stdout).toMatch(/1\.5\.0 → 1\.8\.0\s+complete\s+\S+\s+source, tag signed by fixture-release \(SHA256:\S+\), dependencies reused/)
  })

  test('a changed lockfile installs afresh', async () => {
    const { code, entry, stderr } = await update(['v1.9.0'])
    expect(code, stderr).toBe(0)
    expect(entry.to.installedFrom).toMatchObject({ dependencies: 'installed' })
    expect((await events()).some((e) => e.type === 'log' && e.message === 'installed dep')).toBe(true)
  })
})

describe('--from-source', () => {
  test('builds the tag even though the app publishes artifacts, without asking the artifact server', async () => {
    await f.define((d) => {
      d.artifacts = { url: `${files.url}/good/{tag}/fixture-{version}.tar.gz` }
      delete d.requireSignedTags
      delete d.dependencies
    })
    const seen = files.requests.length
    const { code, entry, stderr } = await update(['v1.9.0', '--force', '--from-source'])
    expect(code, stderr).toBe(0)
    // Not required, but pinned keys still tell a signed tag from an unsigned one.
    expect(entry.to.installedFrom).toEqual({ kind: 'source', tag: { signed: true, signer: 'fixture-release', fingerprint: trusted.fingerprint } })
    expect(files.requests.length).toBe(seen)
    expect(await f.health()).toEqual({ status: 200, version: '1.9.0' })
  })
})
