import { execFileSync } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { createRunTool } from '../../../updater/artifacts/run-tool'
import { verifySignedTag } from '../../../updater/artifacts/signed-tags'
import { pinKey } from '../../../updater/artifacts/trust'
import { sshKeygen, type SshKey } from '../../support/artifacts'
import { commitAll, git, GIT_ENV, initRepo } from '../../support/git-fixtures'

// Must show 3: real tags signed by git with SSH keys; the trusted one verifies, the others are
// refused with their own error before anything could be built.

const run = createRunTool()
let dir: string
let repo: string
let trusted: SshKey
let other: SshKey
let allowed: string
let commit: string

function signedTag(key: SshKey, tag: string, at = 'HEAD'): void {
  git(repo, ['-c', 'gpg.format=ssh', '-c', `user.signingkey=${key.file}`, 'tag', '-s', tag, '-m', `release ${tag}`, at])
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'upkeep-tags-'))
  trusted = sshKeygen(dir, 'maintainer')
  other = sshKeygen(dir, 'someone')
  allowed = path.join(dir, 'trusted-keys')
  await pinKey(allowed, { publicKey: trusted.pub, principal: 'maintainer@acme' })
  repo = path.join(dir, 'repo')
  execFileSync('mkdir', [repo])
  initRepo(repo)
  await writeFile(path.join(repo, 'package.json'), '{"name":"widget","version":"1.0.0"}\n')
  commit = commitAll(repo, 'widget 1.0.0')
  signedTag(trusted, 'v1.0.0')
  signedTag(other, 'v1.0.1')
  git(repo, ['tag', '-a', 'v1.0.2', '-m', 'unsigned'])
  git(repo, ['tag', 'v1.0.3'])
  // The signed tag object of v1.0.0 published under another version's name.
  git(repo, ['update-ref', 'refs/tags/v9.9.9', git(repo, ['rev-parse', 'refs/tags/v1.0.0'])])
  const gpgTag = [`object ${commit}`, 'type commit', 'tag v1.0.4', 'tagger Upkeep Test <test@upkeep.invalid> 1790000000 +0000', '', 'release', '-----BEGIN PGP SIGNATURE-----', '', 'iQEzBAABCAAdFiEE', '-----END PGP SIGNATURE-----', ''].join('\n')
  const gpgObject = execFileSync('git', ['mktag'], { cwd: repo, input: gpgTag, env: { ...process.env, ...GIT_ENV }, encoding: 'utf8' }).trim()
  git(repo, ['update-ref', 'refs/tags/v1.0.4', gpgObject])
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

describe('verifySignedTag', () => {
  test('a tag signed by a pinned key verifies, naming its signer and the commit to build', async () => {
    expect(await verifySignedTag(run, { repoDir: repo, tag: 'v1.0.0', allowedSignersFile: allowed })).toEqual({
      principal: 'maintainer@acme',
      fingerprint: trusted.fingerprint,
      commit,
    })
  })

  test.each([
    ['signed by another key', 'v1.0.1', 'UNTRUSTED_SIGNER', () => `tag v1.0.1 is signed by key ${other.fingerprint}, which is not pinned for this app`],
    ['annotated but unsigned', 'v1.0.2', 'TAG_NOT_SIGNED', () => 'tag v1.0.2 is not signed; the app requires signed tags'],
    ['lightweight', 'v1.0.3', 'TAG_NOT_SIGNED', () => 'tag v1.0.3 is a lightweight tag, which cannot carry a signature; the app requires signed tags'],
    ['a signed tag under another name', 'v9.9.9', 'SIGNATURE_INVALID', () => 'tag v9.9.9 holds the tag object of "v1.0.0": a signed tag renamed to another version'],
    ['GPG-signed', 'v1.0.4', 'TAG_NOT_SIGNED', () => 'tag v1.0.4 is signed with GPG; Upkeep verifies SSH-signed tags only'],
    ['missing', 'v2.0.0', 'TAG_NOT_FOUND', () => /tag v2\.0\.0 does not exist/],
  ])('refuses a tag %s', async (_n, tag, code, message) => {
    await expect(verifySignedTag(run, { repoDir: repo, tag, allowedSignersFile: allowed })).rejects.toMatchObject({ code, message: message(), hint: expect.any(String) })
  })

  test('refuses a trusted key pinned for releases only (git signs in namespace "git")', async () => {
    const releasesOnly = path.join(dir, 'releases-only')
    await pinKey(releasesOnly, { publicKey: trusted.pub, principal: 'maintainer@acme', namespaces: ['upkeep-release'] })
    await expect(verifySignedTag(run, { repoDir: repo, tag: 'v1.0.0', allowedSignersFile: releasesOnly })).rejects.toMatchObject({
      code: 'UNTRUSTED_SIGNER',
      message: /pinned but not for git tags/,
    })
  })

  test('refuses when no key is pinned', async () => {
    await expect(verifySignedTag(run, { repoDir: repo, tag: 'v1.0.0', allowedSignersFile: path.join(dir, 'nothing') })).rejects.toMatchObject({ code: 'UNTRUSTED_SIGNER', message: /no signing key is pinned/ })
  })

  test('refuses tag names that could be options or paths', async () => {
    await expect(verifySignedTag(run, { repoDir: repo, tag: '--help', allowedSignersFile: allowed })).rejects.toMatchObject({ code: 'BAD_VERSION' })
    await expect(verifySignedTag(run, { repoDir: repo, tag: 'v1/../../x', allowedSignersFile: allowed })).rejects.toMatchObject({ code: 'BAD_VERSION' })
  })
})
