import { spawn } from 'node:child_process'
import { appendFile, chmod, cp, mkdir, mkdtemp, readFile, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { allowedSignersLine, ghReleaseArgs, normalizeKey, notesFromTag, parseReleaseTag, ReleaseError, signingDecision } from '../../deploy/release'
import { ensureCommand } from '../support/apt'
import { startFileServer } from '../support/artifacts'
import { adminEnv } from '../support/auth'
import { OWNER } from '../support/fixture-app'
import { artifactOnlyPath, homeWithoutRegistry, pinReleaseKey, serveRelease } from '../support/release-artifacts'
import { installUpkeep } from '../support/upkeep-app'
import type { HistoryEntry } from '../../updater/shared/history'
import type { StatusEvent } from '../../updater/shared/status'
import { commitAll, copyProject, git, GIT_ENV, initRepo } from '../support/git-fixtures'
import { repoRoot } from '../support/paths'
import { freePort, run, waitForJson } from '../support/run'

describe('release tag rules and names', () => {
  test.each([
    { tag: 'v1.4.0', want: { tag: 'v1.4.0', version: '1.4.0', prerelease: false } },
    { tag: 'v1.5.0-rc.1', want: { tag: 'v1.5.0-rc.1', version: '1.5.0-rc.1', prerelease: true } },
    { tag: 'v0.0.0-ci.dry-run', want: { tag: 'v0.0.0-ci.dry-run', version: '0.0.0-ci.dry-run', prerelease: true } },
  ])('$tag is a release tag', ({ tag, want }) => {
    expect(parseReleaseTag(tag)).toEqual(want)
  })

  test.each(['1.4.0', 'v1.4', 'v01.4.0', 'v1.4.0-01', 'v1.4.0+build', 'latest', 'refs/tags/v1.4.0'])('%s is not', (tag) => {
    expect(() => parseReleaseTag(tag)).toThrow(`${tag} is not a release tag`)
  })

  test('no tag at all says how to pass one', () => {
    expect(() => parseReleaseTag(undefined)).toThrow(expect.objectContaining({ message: 'no tag given', hint: 'pass the tag to release: --tag v1.4.0' }))
  })

  test('notes are the tag message: subject, a blank line, the body', () => {
    expect(notesFromTag('v1.4.0: faster', '- one\n- two\n')).toBe('v1.4.0: faster\n\n- one\n- two\n')
    expect(notesFromTag('v1.4.0', '')).toBe('v1.4.0\n')
  })

  test.each([
    { key: 'KEY', required: true, want: 'sign' },
    { key: 'KEY', required: false, want: 'sign' },
    { key: undefined, required: false, want: 'skip' },
    { key: '  \n', required: false, want: 'skip' },
  ])('signing: key $key, required $required → $want', ({ key, required, want }) => {
    expect(signingDecision(key, required)).toBe(want)
  })

  test('a required signature without a key fails, naming the secret', () => {
    for (const key of [undefined, '', '\n']) {
      expect(() => signingDecision(key, true)).toThrow(ReleaseError)
      expect(() => signingDecision(key, true)).toThrow('UPKEEP_RELEASE_SIGNING_KEY is empty: a release is never published unsigned')
    }
  })

  test('a key from a secret store is given LF line ends and a final newline', () => {
    expect(normalizeKey('-----BEGIN X-----\r\nabc\r\n-----END X-----')).toBe('-----BEGIN X-----\nabc\n-----END X-----\n')
  })

  test('allowed signers: the key, for the upkeep-release namespace only', () => {
    expect(allowedSignersLine('ssh-ed25519 AAAAC3Nza maintainer@example\n')).toBe('upkeep-release namespaces="upkeep-release" ssh-ed25519 AAAAC3Nza\n')
  })

  test('gh release create uploads the tarball, SHA256SUMS and its signature with the notes file', () => {
    expect(ghReleaseArgs(parseReleaseTag('v1.4.0'), '/x/dist')).toEqual([
      'release', 'create', 'v1.4.0', '/x/dist/upkeep-1.4.0.tar.gz', '/x/dist/SHA256SUMS', '/x/dist/SHA256SUMS.sig',
      '--title', 'v1.4.0', '--notes-file', '/x/dist/NOTES.md', '--verify-tag',
    ])
    expect(ghReleaseArgs(parseReleaseTag('v1.5.0-rc.1'), 'dist').at(-1)).toBe('--prerelease')
  })
})

// The real release script on tags of a throwaway clone of the project: what it makes must verify
// with sha256sum and ssh-keygen, and unpack into a build the updater runs.
describe('npm run release on a tag of a clone', () => {
  const NOTES = 'v1.4.0: faster updates\n\n- the update log streams live\n- rollback keeps the data it moved aside\n'
  let work: string
  let repo: string
  let key: string
  let commit: string
  let signed: { code: number | null; stdout: string; stderr: string }
  let dryRun: { code: number | null; stdout: string; stderr: string }
  let keyDirsLeft: string[]

  const release = (args: string[], env: Record<string, string> = {}) =>
    run(path.join(repo, 'node_modules/.bin/tsx'), ['deploy/release.ts', ...args], {
      cwd: repo,
      env: { PATH: process.env.PATH ?? '', HOME: work, ...GIT_ENV, ...env },
      timeoutMs: 300_000,
    })
  const sshKeygen = (args: string[], input?: string) => run('ssh-keygen', args, { cwd: work, input })

  beforeAll(async () => {
    ensureCommand('ssh-keygen', ['openssh-client'], { purpose: 'the release signing test' })
    work = await mkdtemp(path.join(tmpdir(), 'upkeep-release-'))
    // The installed Upkeep's user (nobody) fetches from a bare clone in here.
    await chmod(work, 0o755)
    repo = path.join(work, 'repo')
    await copyProject(repo)
    initRepo(repo)
    commitAll(repo, 'release 1.3.0')
    git(repo, ['tag', '-a', 'v1.3.0', '-m', 'v1.3.0'])
    await writeFile(path.join(repo, 'CHANGES.txt'), 'after 1.3.0\n')
    commit = commitAll(repo, 'release 1.4.0')
    git(repo, ['tag', '-a', 'v1.4.0', '-m', 'v1.4.0: faster updates', '-m', '- the update log streams live\n- rollback keeps the data it moved aside'])
    // Linked after the commits: an untracked node_modules is no change the tag lacks.
    await symlink(path.join(repoRoot, 'node_modules'), path.join(repo, 'node_modules'))

    key = path.join(work, 'release-key')
    const made = await sshKeygen(['-q', '-t', 'ed25519', '-N', '', '-C', 'upkeep release test', '-f', key])
    expect(made.code).toBe(0)
    // As a repository secret usually arrives: no final newline.
    const keyDirs = async () => (await readdir(tmpdir())).filter((d) => d.startsWith('upkeep-release-key-'))
    const before = await keyDirs()
    // Every node process of the run (release.ts, npm, the build) notes whether it could see the key.
    const probe = path.join(work, 'env-probe.cjs')
    await writeFile(probe, `require('node:fs').appendFileSync(${JSON.stringify(path.join(work, 'env-probe.jsonl'))}, JSON.stringify({ argv: process.argv.slice(1), key: 'UPKEEP_RELEASE_SIGNING_KEY' in process.env }) + '\\n')\n`)
    signed = await release(['prepare', '--tag', 'v1.4.0', '--out', path.join(work, 'dist'), '--require-signature'], {
      UPKEEP_RELEASE_SIGNING_KEY: (await readFile(key, 'utf8')).trimEnd(),
      NODE_OPTIONS: `--require ${probe}`,
    })
    keyDirsLeft = (await keyDirs()).filter((d) => !before.includes(d))
    dryRun = await release(['prepare', '--tag', 'v1.4.0', '--out', path.join(work, 'dist-dry')])
  }, 600_000)
  afterAll(() => rm(work, { recursive: true, force: true }))

  test('prepare makes the tarball, SHA256SUMS, its signature and the notes', async () => {
    expect(signed.stderr).toBe('')
    expect(signed.code).toBe(0)
    expect(signed.stdout).toMatch(/^release: signed SHA256SUMS with 256 SHA256:\S+ upkeep release test \(ED25519\)$/m)
    const dist = path.join(work, 'dist')
    expect((await readdir(dist)).sort()).toEqual(['NOTES.md', 'SHA256SUMS', 'SHA256SUMS.sig', 'upkeep-1.4.0.tar.gz'])
    expect(await readFile(path.join(dist, 'SHA256SUMS'), 'utf8')).toMatch(/^[0-9a-f]{64} {2}upkeep-1\.4\.0\.tar\.gz\n$/)
    const check = await run('sha256sum', ['-c', 'SHA256SUMS'], { cwd: dist })
    expect(check.stdout).toBe('upkeep-1.4.0.tar.gz: OK\n')
    expect(check.code).toBe(0)
    expect(await readFile(path.join(dist, 'NOTES.md'), 'utf8')).toBe(NOTES)
    // The key file lived in a private temp dir that is gone.
    expect(keyDirsLeft).toEqual([])
  })

  test('the build and its dependencies never see the signing key', async () => {
    const seen = (await readFile(path.join(work, 'env-probe.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { argv: string[]; key: boolean })
    const builds = seen.filter((p) => p.argv.some((a) => a.endsWith('deploy/build.ts') || a === 'build'))
    expect(builds.length).toBeGreaterThan(0)
    expect(builds.filter((p) => p.key)).toEqual([])
    // The probe does see it where it is meant to be: the release script itself.
    expect(seen.filter((p) => p.key && p.argv.some((a) => a.endsWith('deploy/release.ts'))).length).toBeGreaterThan(0)
  })

  test('ssh-keygen -Y verify accepts it with the published key, and nothing else', async () => {
    const dist = path.join(work, 'dist')
    const allowed = path.join(work, 'allowed_signers')
    await writeFile(allowed, `upkeep-release namespaces="upkeep-release" ${await readFile(`${key}.pub`, 'utf8')}`)
    const sums = await readFile(path.join(dist, 'SHA256SUMS'), 'utf8')
    const verify = (input: string, namespace = 'upkeep-release', signers = allowed) =>
      sshKeygen(['-Y', 'verify', '-f', signers, '-I', 'upkeep-release', '-n', namespace, '-s', path.join(dist, 'SHA256SUMS.sig')], input)

    const good = await verify(sums)
    expect(good.stdout).toMatch(/^Good "upkeep-release" signature for upkeep-release with ED25519 key SHA256:/)
    expect(good.code).toBe(0)
    expect((await verify(sums.replace(/^./, (c) => (c === '0' ? '1' : '0')))).code).not.toBe(0)
    expect((await verify(sums, 'file')).code).not.toBe(0)
    const other = path.join(work, 'other-key')
    await sshKeygen(['-q', '-t', 'ed25519', '-N', '', '-C', 'someone else', '-f', other])
    const otherSigners = path.join(work, 'other_signers')
    await writeFile(otherSigners, `upkeep-release ${await readFile(`${other}.pub`, 'utf8')}`)
    expect((await verify(sums, 'upkeep-release', otherSigners)).code).not.toBe(0)
  })

  test('the tarball unpacks to upkeep-1.4.0/, a build that runs and answers /api/health with the tag', async () => {
    const list = await run('tar', ['tzf', path.join(work, 'dist', 'upkeep-1.4.0.tar.gz')])
    const entries = list.stdout.trim().split('\n')
    expect(entries.filter((e) => !e.startsWith('upkeep-1.4.0/'))).toEqual([])
    expect(entries).toEqual(expect.arrayContaining(['upkeep-1.4.0/server.mjs', 'upkeep-1.4.0/upkeep.mjs', 'upkeep-1.4.0/server-cli.mjs', 'upkeep-1.4.0/web/index.html', 'upkeep-1.4.0/build-info.json']))

    const unpacked = path.join(work, 'unpacked')
    await mkdir(unpacked)
    expect((await run('tar', ['xzf', path.join(work, 'dist', 'upkeep-1.4.0.tar.gz'), '-C', unpacked])).code).toBe(0)
    const build = path.join(unpacked, 'upkeep-1.4.0')
    expect(JSON.parse(await readFile(path.join(build, 'build-info.json'), 'utf8'))).toMatchObject({ version: '1.4.0', commit })

    const port = await freePort()
    const server = spawn(process.execPath, [path.join(build, 'server.mjs')], {
      cwd: unpacked,
      env: { PATH: process.env.PATH, PORT: String(port), DATA_DIR: path.join(work, 'data'), LOG_LEVEL: 'warn', UPDATE_REPO: 'acme/upkeep', UPDATE_CHECK_DISABLED: 'true', ...adminEnv() },
      stdio: 'ignore',
    })
    try {
      const health = await waitForJson<Record<string, string>>(`http://127.0.0.1:${port}/api/health`)
      expect(health).toMatchObject({ status: 'ok', version: '1.4.0', commit })
    } finally {
      server.kill('SIGTERM')
    }
    expect(await new Promise((r) => server.once('exit', r))).toBe(0)
  })

  test('without a key (CI’s dry run) it says it did not sign and makes everything else', async () => {
    expect(dryRun.stderr).toBe('')
    expect(dryRun.code).toBe(0)
    expect(dryRun.stdout).toContain('release: did not sign SHA256SUMS: UPKEEP_RELEASE_SIGNING_KEY is not set (a dry run; a tag push requires it)')
    const dist = path.join(work, 'dist-dry')
    expect((await readdir(dist)).sort()).toEqual(['NOTES.md', 'SHA256SUMS', 'upkeep-1.4.0.tar.gz'])
    expect((await run('sha256sum', ['-c', 'SHA256SUMS'], { cwd: dist })).code).toBe(0)
    expect(await readFile(path.join(dist, 'NOTES.md'), 'utf8')).toBe(NOTES)
  })

  test('a tag push without the secret fails before building anything', async () => {
    const out = path.join(work, 'dist-nokey')
    const r = await release(['prepare', '--tag', 'v1.4.0', '--out', out, '--require-signature'], { UPKEEP_RELEASE_SIGNING_KEY: '' })
    expect(r.code).toBe(1)
    expect(r.stderr).toBe('release: UPKEEP_RELEASE_SIGNING_KEY is empty: a release is never published unsigned\n  store the release signing key as the repository secret UPKEEP_RELEASE_SIGNING_KEY (README: "Cutting a release")\n')
    expect(r.stdout).toBe('')
    await expect(stat(out)).rejects.toMatchObject({ code: 'ENOENT' })
  })

  test('refuses a tag that is not checked out, a lightweight tag, an unknown tag and a changed checkout', async () => {
    const out = path.join(work, 'dist-refused')
    const refused = async (tag: string) => {
      const r = await release(['prepare', '--tag', tag, '--out', out])
      expect(r.code).toBe(1)
      return r.stderr
    }
    expect(await refused('v1.3.0')).toMatch(/^release: HEAD \([0-9a-f]{12}\) is not v1\.3\.0 \([0-9a-f]{12}\)\n {2}check the tag out first: git checkout v1\.3\.0\n$/)
    git(repo, ['tag', 'v1.5.0'])
    expect(await refused('v1.5.0')).toContain("release: v1.5.0 is a lightweight tag; the release notes come from an annotated tag's message\n  tag it again with notes: git tag -f -a v1.5.0")
    expect(await refused('v9.9.9')).toContain('release: there is no tag v9.9.9 here\n  fetch it: git fetch origin refs/tags/v9.9.9:refs/tags/v9.9.9')
    expect(await refused('v1.4')).toContain('release: v1.4 is not a release tag')
    await appendFile(path.join(repo, 'CHANGES.txt'), 'an edit after tagging\n')
    try {
      expect(await refused('v1.4.0')).toContain('release: the checkout has changes the tag does not:\n M CHANGES.txt')
    } finally {
      git(repo, ['checkout', '--', 'CHANGES.txt'])
    }
    await expect(stat(out)).rejects.toMatchObject({ code: 'ENOENT' })
  })

  // The end of the release path: what prepare made is what an installed Upkeep takes as its update.
  test('an installed 1.3.0 updates itself from dist/: verified against the pinned key, no npm, no registry, no build', async () => {
    const origin = path.join(work, 'origin.git')
    git(work, ['clone', '-q', '--bare', repo, origin])
    const install = await installUpkeep(origin, 'v1.3.0', {})
    const files = await startFileServer()
    try {
      const appsDir = path.join(install.root, 'apps')
      await pinReleaseKey(appsDir, 'upkeep', await readFile(`${key}.pub`, 'utf8'))
      const r = await run(process.execPath, [path.join(install.appDir, 'current', 'upkeep.mjs'), 'update', 'v1.4.0', '--yes', '--json'], {
        cwd: install.appDir,
        uid: OWNER.uid,
        gid: OWNER.gid,
        env: {
          ...install.env,
          PATH: await artifactOnlyPath(path.join(install.root, 'bin')),
          HOME: await homeWithoutRegistry(path.join(install.root, 'offline-home')),
          npm_config_registry: 'http://127.0.0.1:9/',
          UPKEEP_ARTIFACTS_URL: await serveRelease(files, 'v1.4.0', path.join(work, 'dist')),
          UPKEEP_APPS_DIR: appsDir,
        },
        timeoutMs: 180_000,
      })
      expect(r.code, r.stderr).toBe(0)
      const entry = JSON.parse(r.stdout) as HistoryEntry
      const fingerprint = (await sshKeygen(['-l', '-f', `${key}.pub`])).stdout.split(' ')[1]
      expect(entry).toMatchObject({ status: 'complete', from: { version: '1.3.0' }, to: { version: '1.4.0', installedFrom: { kind: 'artifact', signer: 'upkeep-release', fingerprint } } })
      expect(await install.health()).toMatchObject({ version: '1.4.0', commit })
      expect(files.requests.map((q) => q.path)).toEqual(['/v1.4.0/SHA256SUMS', '/v1.4.0/SHA256SUMS.sig', '/v1.4.0/upkeep-1.4.0.tar.gz'])
      const events = (await readFile(path.join(install.dataDir, 'update-status.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as StatusEvent)
      expect(events.filter((e) => e.type === 'log' && e.message.startsWith('$ '))).toEqual([])
      // The release is the tarball's content, as the release workflow built it.
      expect(JSON.parse(await readFile(path.join(install.appDir, 'current', 'build-info.json'), 'utf8'))).toMatchObject({ version: '1.4.0', commit })
    } finally {
      await install.stop()
      await files.close()
    }
  }, 300_000)

  test('publish checks dist/ again: a missing signature, or a tarball swapped under re-made sums, stops it before gh', async () => {
    const env = { UPKEEP_RELEASE_SIGNING_KEY: await readFile(key, 'utf8') }
    const unsigned = await release(['publish', '--tag', 'v1.4.0', '--out', path.join(work, 'dist-dry')], env)
    expect(unsigned.code).toBe(1)
    expect(unsigned.stderr).toContain('release: SHA256SUMS.sig is missing from')

    const evil = path.join(work, 'dist-evil')
    await cp(path.join(work, 'dist'), evil, { recursive: true })
    await appendFile(path.join(evil, 'upkeep-1.4.0.tar.gz'), 'payload')
    const sum = (await run('sha256sum', ['upkeep-1.4.0.tar.gz'], { cwd: evil })).stdout
    await writeFile(path.join(evil, 'SHA256SUMS'), sum)
    const swapped = await release(['publish', '--tag', 'v1.4.0', '--out', evil], env)
    expect(swapped.code).toBe(1)
    expect(swapped.stderr).toContain('release: ssh-keygen -Y verify failed')
    expect(swapped.stdout).not.toContain('publishing')

    const noKey = await release(['publish', '--tag', 'v1.4.0', '--out', path.join(work, 'dist')])
    expect(noKey.code).toBe(1)
    expect(noKey.stderr).toContain('UPKEEP_RELEASE_SIGNING_KEY is empty')
  })
})
