// `npm run release -- prepare|publish --tag vX.Y.Z`: the release path, run by release.yml on a
// tag push and, up to the upload, by ci.yml on every push (so a broken release path shows up
// before the next tag, not on it).
//   prepare  checks the tag, builds it, packs dist/upkeep-<version>.tar.gz, writes dist/SHA256SUMS,
//            dist/NOTES.md (the annotated tag's message) and, given a key, dist/SHA256SUMS.sig
//   publish  checks dist/ again and creates the GitHub Release with gh
// TypeScript rather than shell: the tag rules are the updater's own (isReleaseTag), the pure parts
// are tested table-driven, and tag messages and keys never pass through shell quoting.
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { execa } from 'execa'
import { isReleaseTag } from '../updater/shared/version'
import { CHECKSUMS, packBuild, readBuildInfo, writeChecksums } from './pack'

const root = path.resolve(import.meta.dirname, '..')

/** The environment variable holding the OpenSSH private key (a repository secret in release.yml). */
export const SIGNING_KEY_ENV = 'UPKEEP_RELEASE_SIGNING_KEY'
/** ssh-keygen -Y namespace: a signature made for Upkeep releases verifies for nothing else. */
export const SIGNATURE_NAMESPACE = 'upkeep-release'
export const SIGNATURE = `${CHECKSUMS}.sig`
export const NOTES = 'NOTES.md'

export class ReleaseError extends Error {
  override name = 'ReleaseError'
  constructor(
    message: string,
    readonly hint: string,
  ) {
    super(message)
  }
}

export interface ReleaseTag {
  tag: string
  version: string
  prerelease: boolean
}

/** A `vMAJOR.MINOR.PATCH[-pre]` tag, exactly what the updater offers as a release. */
export function parseReleaseTag(tag: string | undefined): ReleaseTag {
  if (!tag) throw new ReleaseError('no tag given', 'pass the tag to release: --tag v1.4.0')
  if (!isReleaseTag(tag)) throw new ReleaseError(`${tag} is not a release tag`, 'release tags are semver: v1.4.0, or v1.4.0-rc.1 for a prerelease')
  const version = tag.slice(1)
  return { tag, version, prerelease: version.includes('-') }
}

/** The file names of a release of `version`, in upload order. */
export function releaseFiles(version: string): { tarball: string; checksums: string; signature: string; notes: string } {
  return { tarball: `upkeep-${version}.tar.gz`, checksums: CHECKSUMS, signature: SIGNATURE, notes: NOTES }
}

/** Release notes from an annotated tag's subject and body (without a signature block). */
export function notesFromTag(subject: string, body: string): string {
  const text = [subject.trim(), body.trim()].filter(Boolean).join('\n\n')
  return `${text}\n`
}

/**
 * Whether to sign: with a key, always; without one, only a dry run may go on, unsigned.
 * A tag push (`required`) without the secret fails before anything is built.
 */
export function signingDecision(key: string | undefined, required: boolean): 'sign' | 'skip' {
  if (key?.trim()) return 'sign'
  if (required) {
    throw new ReleaseError(
      `${SIGNING_KEY_ENV} is empty: a release is never published unsigned`,
      `store the release signing key as the repository secret ${SIGNING_KEY_ENV} (README: "Cutting a release")`,
    )
  }
  return 'skip'
}

/** The private key as ssh-keygen reads it: LF line ends and a final newline (secrets often lose it). */
export function normalizeKey(key: string): string {
  return `${key.replace(/\r\n?/g, '\n').trim()}\n`
}

/** An allowed_signers line (ssh-keygen(1) ALLOWED SIGNERS) that trusts `publicKey` for releases only. */
export function allowedSignersLine(publicKey: string): string {
  const [type, blob] = publicKey.trim().split(/\s+/)
  if (!type || !blob) throw new ReleaseError('not an OpenSSH public key', 'ssh-keygen -y -f KEYFILE prints one')
  return `${SIGNATURE_NAMESPACE} namespaces="${SIGNATURE_NAMESPACE}" ${type} ${blob}\n`
}

/** `gh release create` for the files of a release, notes from NOTES.md. */
export function ghReleaseArgs(t: ReleaseTag, outDir: string): string[] {
  const f = releaseFiles(t.version)
  return [
    'release', 'create', t.tag,
    path.join(outDir, f.tarball), path.join(outDir, f.checksums), path.join(outDir, f.signature),
    '--title', t.tag, '--notes-file', path.join(outDir, f.notes), '--verify-tag',
    ...(t.prerelease ? ['--prerelease'] : []),
  ]
}

const say = (line: string) => process.stdout.write(`release: ${line}\n`)

async function git(args: string[]): Promise<string> {
  const r = await execa('git', args, { cwd: root, reject: false, stdin: 'ignore' })
  if (r.exitCode !== 0) throw new ReleaseError(`git ${args.join(' ')} failed: ${r.stderr.trim()}`, 'run the release from a git checkout of the project')
  return r.stdout.trimEnd() // keeps the leading column of `git status --porcelain`
}

/** The tag is annotated (its message is the notes), checked out, and the worktree is clean. */
async function verifyCheckout(t: ReleaseTag): Promise<{ commit: string; notes: string }> {
  const type = await execa('git', ['cat-file', '-t', `refs/tags/${t.tag}`], { cwd: root, reject: false, stdin: 'ignore' })
  if (type.exitCode !== 0) throw new ReleaseError(`there is no tag ${t.tag} here`, `fetch it: git fetch origin refs/tags/${t.tag}:refs/tags/${t.tag}`)
  if (type.stdout.trim() !== 'tag') {
    throw new ReleaseError(`${t.tag} is a lightweight tag; the release notes come from an annotated tag's message`, `tag it again with notes: git tag -f -a ${t.tag} -m "${t.tag}: what changed"`)
  }
  const [commit, head, dirty] = await Promise.all([git(['rev-parse', `${t.tag}^{commit}`]), git(['rev-parse', 'HEAD']), git(['status', '--porcelain', '--untracked-files=no'])])
  if (commit !== head) throw new ReleaseError(`HEAD (${head.slice(0, 12)}) is not ${t.tag} (${commit.slice(0, 12)})`, `check the tag out first: git checkout ${t.tag}`)
  if (dirty) throw new ReleaseError(`the checkout has changes the tag does not:\n${dirty}`, 'release from a clean checkout of the tag: git stash, or a fresh clone')
  const [subject, body] = await Promise.all([
    git(['for-each-ref', '--format=%(contents:subject)', `refs/tags/${t.tag}`]),
    git(['for-each-ref', '--format=%(contents:body)', `refs/tags/${t.tag}`]),
  ])
  return { commit, notes: notesFromTag(subject, body) }
}

/** Runs `fn` with the key in a 0600 file in a private temp dir, removed afterwards whatever happens. */
async function withKeyFile<T>(key: string, fn: (keyFile: string, dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(tmpdir(), 'upkeep-release-key-'))
  try {
    const keyFile = path.join(dir, 'signing-key')
    await writeFile(keyFile, normalizeKey(key), { mode: 0o600, flag: 'wx' })
    await chmod(keyFile, 0o600) // whatever the umask
    return await fn(keyFile, dir)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

async function sshKeygen(args: string[], opts: { cwd?: string; input?: string } = {}): Promise<string> {
  const r = await execa('ssh-keygen', args, { cwd: opts.cwd, reject: false, ...(opts.input === undefined ? { stdin: 'ignore' as const } : { input: opts.input }) })
  if (r.exitCode !== 0) {
    throw new ReleaseError(`ssh-keygen ${args[0]} ${args[1] ?? ''} failed: ${`${r.stderr}`.trim() || `exit ${r.exitCode}`}`, `${SIGNING_KEY_ENV} must hold an OpenSSH private key without a passphrase (ssh-keygen -t ed25519 -N '')`)
  }
  return `${r.stdout}`.trim()
}

/** Checks SHA256SUMS.sig against the key's own public half; returns the key's fingerprint. */
async function verifySignature(outDir: string, keyFile: string, dir: string): Promise<string> {
  const publicKey = await sshKeygen(['-y', '-f', keyFile])
  const allowed = path.join(dir, 'allowed_signers')
  await writeFile(allowed, allowedSignersLine(publicKey))
  const sums = await readFile(path.join(outDir, CHECKSUMS), 'utf8')
  await sshKeygen(['-Y', 'verify', '-f', allowed, '-I', SIGNATURE_NAMESPACE, '-n', SIGNATURE_NAMESPACE, '-s', path.join(outDir, SIGNATURE)], { input: sums })
  return sshKeygen(['-l', '-f', keyFile])
}

async function verifyChecksums(outDir: string): Promise<void> {
  const r = await execa('sha256sum', ['-c', '--strict', CHECKSUMS], { cwd: outDir, reject: false, stdin: 'ignore' })
  if (r.exitCode !== 0) throw new ReleaseError(`sha256sum -c ${CHECKSUMS} failed in ${outDir}:\n${r.stdout}${r.stderr}`, 'prepare the release again: npm run release -- prepare --tag TAG')
}

/** Only what a release writes goes: a stale SHA256SUMS.sig must never sit beside new sums. */
async function removeStaleFiles(outDir: string): Promise<void> {
  await mkdir(outDir, { recursive: true })
  for (const name of await readdir(outDir)) {
    if ([CHECKSUMS, SIGNATURE, NOTES].includes(name) || /^upkeep-.+\.tar\.gz$/.test(name)) await rm(path.join(outDir, name), { force: true })
  }
}

/** Builds, packs, checksums, notes and (given a key) signs the tag into `outDir`. */
export async function prepare(opts: { tag: string | undefined; outDir: string; requireSignature: boolean; env: NodeJS.ProcessEnv }): Promise<void> {
  const t = parseReleaseTag(opts.tag)
  const key = opts.env[SIGNING_KEY_ENV]
  const signing = signingDecision(key, opts.requireSignature)
  const { commit, notes } = await verifyCheckout(t)
  say(`${t.tag} (${commit.slice(0, 12)})${t.prerelease ? ', a prerelease' : ''}`)

  const files = releaseFiles(t.version)
  await removeStaleFiles(opts.outDir)
  const buildDir = await mkdtemp(path.join(tmpdir(), 'upkeep-release-build-'))
  try {
    say('building')
    // The version is the tag's, whatever git describe would pick among several tags on this commit;
    // the signing key stays out of reach of the build's dependencies.
    const { [SIGNING_KEY_ENV]: _key, ...buildEnv } = opts.env
    const env = { ...buildEnv, UPKEEP_BUILD_VERSION: t.version, UPKEEP_BUILD_COMMIT: commit }
    const built = await execa('npm', ['run', 'build', '--silent', '--', '--out', buildDir], { cwd: root, env, extendEnv: false, reject: false, stdin: 'ignore', all: true })
    if (built.exitCode !== 0) throw new ReleaseError(`npm run build failed:\n${`${built.all}`.split('\n').slice(-30).join('\n')}`, 'fix the build, then tag again')
    say(`${built.all}`.trim())
    const info = await readBuildInfo(buildDir)
    if (info.version !== t.version || info.commit !== commit) throw new ReleaseError(`the build says ${info.version} (${info.commit}), not ${t.version} (${commit})`, 'deploy/build.ts must honour UPKEEP_BUILD_VERSION and UPKEEP_BUILD_COMMIT')
    const { tarball } = await packBuild(buildDir, opts.outDir)
    if (path.basename(tarball) !== files.tarball) throw new ReleaseError(`packed ${path.basename(tarball)}, expected ${files.tarball}`, 'deploy/pack.ts names the tarball upkeep-<version>.tar.gz')
    await writeChecksums(opts.outDir, [tarball])
  } finally {
    await rm(buildDir, { recursive: true, force: true })
  }
  await writeFile(path.join(opts.outDir, files.notes), notes)
  await verifyChecksums(opts.outDir)

  if (signing === 'sign') {
    const fingerprint = await withKeyFile(key!, async (keyFile, dir) => {
      await sshKeygen(['-Y', 'sign', '-f', keyFile, '-n', SIGNATURE_NAMESPACE, CHECKSUMS], { cwd: opts.outDir })
      return verifySignature(opts.outDir, keyFile, dir)
    })
    say(`signed ${CHECKSUMS} with ${fingerprint}`)
  } else {
    say(`did not sign ${CHECKSUMS}: ${SIGNING_KEY_ENV} is not set (a dry run; a tag push requires it)`)
  }
  for (const name of Object.values(files)) {
    const size = await stat(path.join(opts.outDir, name)).then((s) => `${s.size} bytes`, () => 'not made')
    say(`  ${path.join(path.relative(process.cwd(), opts.outDir), name)}  ${size}`)
  }
}

/** Checks what prepare left in `outDir`, signature included, then creates the GitHub Release. */
export async function publish(opts: { tag: string | undefined; outDir: string; env: NodeJS.ProcessEnv }): Promise<void> {
  const t = parseReleaseTag(opts.tag)
  const key = opts.env[SIGNING_KEY_ENV]
  signingDecision(key, true)
  const files = releaseFiles(t.version)
  for (const name of Object.values(files)) {
    await stat(path.join(opts.outDir, name)).catch(() => {
      throw new ReleaseError(`${name} is missing from ${opts.outDir}`, `prepare it first: npm run release -- prepare --tag ${t.tag}`)
    })
  }
  await verifyChecksums(opts.outDir)
  const fingerprint = await withKeyFile(key!, (keyFile, dir) => verifySignature(opts.outDir, keyFile, dir))
  say(`publishing ${t.tag}, ${SIGNATURE} by ${fingerprint}`)
  const r = await execa('gh', ghReleaseArgs(t, opts.outDir), { cwd: root, env: opts.env, reject: false, stdin: 'ignore', stdout: 'inherit', stderr: 'inherit' })
  if (r.exitCode !== 0) throw new ReleaseError(`gh release create ${t.tag} failed: ${r.exitCode === undefined ? r.shortMessage : `exit ${r.exitCode}`}`, "see gh's message above; a release that already exists must be deleted first: gh release delete TAG")
}

const USAGE = `Usage: npm run release -- prepare --tag vX.Y.Z [--out dist] [--require-signature]
       npm run release -- publish --tag vX.Y.Z [--out dist]
${SIGNING_KEY_ENV}: the OpenSSH private key that signs ${CHECKSUMS} (required by --require-signature and publish)`

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { tag: { type: 'string' }, out: { type: 'string', default: 'dist' }, 'require-signature': { type: 'boolean', default: false }, help: { type: 'boolean', default: false } },
  })
  if (values.help) return void process.stdout.write(`${USAGE}\n`)
  const outDir = path.resolve(root, values.out!)
  const command = positionals[0]
  if (command === 'prepare' && positionals.length === 1) await prepare({ tag: values.tag, outDir, requireSignature: values['require-signature']!, env: process.env })
  else if (command === 'publish' && positionals.length === 1) await publish({ tag: values.tag, outDir, env: process.env })
  else throw new ReleaseError(`unknown command: ${positionals.join(' ') || '(none)'}`, USAGE)
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main().catch((err: unknown) => {
    if (err instanceof ReleaseError) process.stderr.write(`release: ${err.message}\n  ${err.hint}\n`)
    else process.stderr.write(`release: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
    process.exitCode = 1
  })
}
