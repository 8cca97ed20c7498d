import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { UpdateError } from '../shared/errors'
import type { RunTool } from './run-tool'
import { fingerprintIn, type Signer } from './signature'

export interface SignedTag extends Signer {
  /** The commit the tag points to: what the build must check out (not the tag name again). */
  commit: string
}

const TRUST_HINT = 'tag releases with a pinned key (git tag -s with gpg.format=ssh), or pin the maintainer\'s new key with `upkeep app trust`'

/**
 * Refuses to build `tag` unless it is an annotated tag carrying an SSH signature by a key in
 * `allowedSignersFile` that may sign in git's namespace (`namespaces="git"`). Git verifies
 * (`verify-tag --raw`, which asks ssh-keygen); this adds what git does not: a lightweight tag is
 * named as such, and a signed tag object must carry the name it is fetched under, or an old signed
 * release could be replayed under a new version's name. GPG signatures are not supported.
 */
export async function verifySignedTag(run: RunTool, o: { repoDir: string; tag: string; allowedSignersFile: string }): Promise<SignedTag> {
  const { tag } = o
  if (!/^[A-Za-z0-9][A-Za-z0-9._+-]*$/.test(tag) || tag.includes('..')) {
    throw new UpdateError('BAD_VERSION', `"${tag}" is not a tag name Upkeep builds`, { hint: 'tags look like v1.2.3' })
  }
  const ref = `refs/tags/${tag}`
  const git = (args: string[]) => run('git', args, { cwd: o.repoDir })

  const type = await git(['cat-file', '-t', ref])
  if (type.code !== 0) throw new UpdateError('TAG_NOT_FOUND', `tag ${tag} does not exist in ${o.repoDir}`, { hint: 'fetch the tags first (git fetch --tags)' })
  if (type.stdout.trim() !== 'tag') {
    throw new UpdateError('TAG_NOT_SIGNED', `tag ${tag} is a lightweight tag, which cannot carry a signature; the app requires signed tags`, {
      hint: `the maintainer must tag releases with \`git tag -s ${tag}\`; until then, turn off requireSignedTags for this app only if you trust the repository`,
    })
  }
  const object = await git(['cat-file', 'tag', ref])
  const header = object.stdout.split('\n\n')[0] ?? ''
  const named = /^tag (.+)$/m.exec(header)?.[1]
  if (named !== tag) {
    throw new UpdateError('SIGNATURE_INVALID', `tag ${tag} holds the tag object of "${named ?? '?'}": a signed tag renamed to another version`, {
      hint: 'do not build it: the repository serves a tag under a name it was not signed for; tell its maintainer',
    })
  }
  if (!object.stdout.includes('-----BEGIN SSH SIGNATURE-----')) {
    const gpg = object.stdout.includes('-----BEGIN PGP SIGNATURE-----')
    throw new UpdateError('TAG_NOT_SIGNED', gpg ? `tag ${tag} is signed with GPG; Upkeep verifies SSH-signed tags only` : `tag ${tag} is not signed; the app requires signed tags`, {
      hint: gpg
        ? 'sign release tags with an SSH key (git -c gpg.format=ssh -c user.signingkey=KEY tag -s) and pin that key'
        : `the maintainer must tag releases with \`git tag -s ${tag}\` using a pinned SSH key`,
    })
  }
  const signers = await readFile(o.allowedSignersFile, 'utf8').catch(() => '')
  if (!signers.split('\n').some((l) => l.trim() && !l.trim().startsWith('#'))) {
    throw new UpdateError('UNTRUSTED_SIGNER', `no signing key is pinned for this app, so tag ${tag} cannot be verified`, { hint: 'pin the maintainer\'s key with `upkeep app trust`, then try again' })
  }

  const verify = await git(['-c', `gpg.ssh.allowedSignersFile=${path.resolve(o.allowedSignersFile)}`, '-c', 'gpg.ssh.program=ssh-keygen', 'verify-tag', '--raw', ref])
  const out = `${verify.stdout}\n${verify.stderr}`
  const fingerprint = fingerprintIn(out) ?? 'an unknown key'
  if (verify.code !== 0) {
    if (/No principal matched/.test(out)) throw new UpdateError('UNTRUSTED_SIGNER', `tag ${tag} is signed by key ${fingerprint}, which is not pinned for this app`, { hint: TRUST_HINT })
    if (/not permitted for use in signature namespace/.test(out)) {
      throw new UpdateError('UNTRUSTED_SIGNER', `tag ${tag} is signed by key ${fingerprint}, which is pinned but not for git tags (namespace "git")`, { hint: TRUST_HINT })
    }
    const why = out.split('\n').map((l) => l.trim()).filter(Boolean).at(-1) ?? `git verify-tag exited ${verify.code}`
    throw new UpdateError('SIGNATURE_INVALID', `the signature of tag ${tag} does not verify: ${why}`, { hint: 'do not build it: the tag was altered; tell its maintainer' })
  }
  const principal = /Good "git" signature for (\S+) with/.exec(out)?.[1]
  if (!principal) throw new UpdateError('SIGNATURE_INVALID', `git accepted tag ${tag} but did not say who signed it`, { hint: 'check that git is 2.34 or newer' })
  const commit = await git(['rev-parse', '--verify', `${ref}^{commit}`])
  if (commit.code !== 0) throw new UpdateError('TAG_NOT_FOUND', `tag ${tag} does not point to a commit`, { hint: 'tell the maintainer: release tags must point to commits' })
  return { principal, fingerprint, commit: commit.stdout.trim() }
}
