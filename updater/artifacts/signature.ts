import { readFile } from 'node:fs/promises'
import { UpdateError } from '../shared/errors'
import type { RunTool } from './run-tool'

/** The namespace release checksums are signed in: `ssh-keygen -Y sign -f KEY -n upkeep-release SHA256SUMS`. */
export const RELEASE_NAMESPACE = 'upkeep-release'

/** Who made a signature that verified: the principal of its line in the allowed-signers file, and its key. */
export interface Signer {
  principal: string
  /** `SHA256:…`, as `ssh-keygen -l` prints it. */
  fingerprint: string
}

export interface VerifySignatureOptions {
  /** The signed file (SHA256SUMS). */
  messageFile: string
  /** Its detached signature (SHA256SUMS.sig). */
  signatureFile: string
  /** The app's pinned keys, in ssh-keygen's allowed-signers format. */
  allowedSignersFile: string
  namespace?: string
  /** How messages name the signed file, e.g. "SHA256SUMS of widget v1.2.0". */
  what: string
}

const TRUST_HINT = 'if the release\'s maintainer changed their key, pin the new one with `upkeep app trust` (signed by the old key, or explicitly); otherwise do not install this release'

/**
 * Verifies a detached OpenSSH signature against the pinned keys, in three looks so that each
 * refusal says what is wrong: is it a valid signature at all (`-Y check-novalidate`), is its key
 * pinned (`-Y find-principals`), does that pinned key verify it in this namespace (`-Y verify`).
 * The principal is looked up rather than fixed per app, so an app can pin several keys.
 */
export async function verifySignature(run: RunTool, o: VerifySignatureOptions): Promise<Signer> {
  const namespace = o.namespace ?? RELEASE_NAMESPACE
  const sig = await readFile(o.signatureFile, 'utf8').catch(() => '')
  if (!sig.trim()) {
    throw new UpdateError('SIGNATURE_MISSING', `${o.what} is not signed: no signature was published`, {
      hint: 'the app requires signed releases: ask its maintainer to publish SHA256SUMS.sig (ssh-keygen -Y sign -n upkeep-release), or build from source',
    })
  }
  if (!sig.includes('-----BEGIN SSH SIGNATURE-----')) {
    throw new UpdateError('SIGNATURE_INVALID', `the signature of ${o.what} is not an SSH signature`, {
      hint: 'releases are signed with `ssh-keygen -Y sign -n upkeep-release`; do not install this release',
    })
  }
  const signers = await readFile(o.allowedSignersFile, 'utf8').catch(() => '')
  if (!signers.split('\n').some((l) => l.trim() && !l.trim().startsWith('#'))) {
    throw new UpdateError('UNTRUSTED_SIGNER', `no signing key is pinned for this app, so ${o.what} cannot be verified`, {
      hint: 'pin the release key with `upkeep app trust` (the maintainer publishes it), then try again',
    })
  }

  const check = await run('ssh-keygen', ['-Y', 'check-novalidate', '-n', namespace, '-s', o.signatureFile], { inputFile: o.messageFile })
  if (check.code !== 0) {
    throw new UpdateError('SIGNATURE_INVALID', `the signature of ${o.what} is bad: ${reason(check.stdout, check.stderr)}`, {
      hint: 'the file or its signature was altered or mixed up with another release; do not install it, and tell its maintainer',
    })
  }
  const fingerprint = fingerprintIn(check.stdout + '\n' + check.stderr) ?? 'an unknown key'

  const found = await run('ssh-keygen', ['-Y', 'find-principals', '-f', o.allowedSignersFile, '-s', o.signatureFile])
  const principal = found.code === 0 ? found.stdout.split('\n')[0]?.split(',')[0]?.trim() : undefined
  if (!principal) {
    throw new UpdateError('UNTRUSTED_SIGNER', `${o.what} is signed by key ${fingerprint}, which is not pinned for this app`, { hint: TRUST_HINT })
  }

  const verify = await run('ssh-keygen', ['-Y', 'verify', '-f', o.allowedSignersFile, '-I', principal, '-n', namespace, '-s', o.signatureFile], { inputFile: o.messageFile })
  const out = verify.stdout + '\n' + verify.stderr
  if (verify.code !== 0) {
    if (/not permitted for use in signature namespace/.test(out)) {
      throw new UpdateError('UNTRUSTED_SIGNER', `${o.what} is signed by key ${fingerprint} (${principal}), which is pinned but not for "${namespace}" signatures`, { hint: TRUST_HINT })
    }
    throw new UpdateError('SIGNATURE_INVALID', `the signature of ${o.what} by ${principal} does not verify: ${reason(verify.stdout, verify.stderr)}`, {
      hint: 'the pinned key may have expired (valid-before) or the signature was altered; do not install this release',
    })
  }
  return { principal, fingerprint: fingerprintIn(out) ?? fingerprint }
}

/** `SHA256:…` from ssh-keygen's "Good "ns" signature … with ED25519 key SHA256:…". */
export function fingerprintIn(output: string): string | undefined {
  return /\bkey (SHA256:[A-Za-z0-9+/]{43})\b/.exec(output)?.[1]
}

/** ssh-keygen's last line of complaint, for the message. */
function reason(stdout: string, stderr: string): string {
  const lines = `${stderr}\n${stdout}`.split('\n').map((l) => l.trim()).filter((l) => l && l !== 'Could not verify signature.')
  return lines.at(-1)?.replace(/^Signature verification failed: /, '') ?? 'ssh-keygen could not verify it'
}
