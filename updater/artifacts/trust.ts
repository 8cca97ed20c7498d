import { createHash } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { writeFileAtomic } from '../shared/atomic-write'
import { UpdateError, isUpdateError } from '../shared/errors'
import type { RunTool } from './run-tool'
import { RELEASE_NAMESPACE, verifySignature } from './signature'

/**
 * The keys pinned for an app: an ssh-keygen allowed-signers file (man ssh-keygen, "ALLOWED
 * SIGNERS") in the app's state directory, one key a line:
 *
 *     release@acme namespaces="upkeep-release,git" ssh-ed25519 AAAA… comment
 *
 * `upkeep-release` lets the key sign SHA256SUMS of release artifacts, `git` lets it sign tags
 * (git verifies tags in that namespace). ssh-keygen enforces the namespaces itself.
 */
export interface TrustedKey {
  /** A plain name (no commas, wildcards or spaces), so `ssh-keygen -Y verify -I` can name it. */
  principal: string
  /** Options in file order; `namespaces` among them. Values without quotes; `true` for flags. */
  options: [string, string | true][]
  keyType: string
  /** The key blob, base64. */
  key: string
  comment: string
}

/** The namespace a pinned key signs a new key in: `ssh-keygen -Y sign -f OLD_KEY -n upkeep-key-rotation new.pub`. */
export const ROTATION_NAMESPACE = 'upkeep-key-rotation'
/** What a key pinned at install time may sign, unless told otherwise. */
export const DEFAULT_NAMESPACES = [RELEASE_NAMESPACE, 'git']

const KEY_TYPES = new Set([
  'ssh-ed25519',
  'ssh-rsa',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'sk-ssh-ed25519@openssh.com',
  'sk-ecdsa-sha2-nistp256@openssh.com',
])
const PRINCIPAL = /^[A-Za-z0-9._@+-]+$/
const OPTION_NAMES = new Set(['namespaces', 'valid-after', 'valid-before', 'cert-authority'])

function bad(message: string): UpdateError {
  return new UpdateError('BAD_CONFIG', message, { hint: 'a public key looks like `ssh-ed25519 AAAA… comment` (the .pub file of ssh-keygen)' })
}

/** Checks a key blob: valid base64 whose SSH wire form starts with its own type name. Pure. */
function verifyKeyBlob(keyType: string, key: string): void {
  if (!KEY_TYPES.has(keyType)) throw bad(`unsupported key type "${keyType}"`)
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(key)) throw bad(`the ${keyType} key is not base64`)
  const blob = Buffer.from(key, 'base64')
  const len = blob.length >= 4 ? blob.readUInt32BE(0) : -1
  if (len !== keyType.length || blob.subarray(4, 4 + len).toString('latin1') !== keyType) throw bad(`the key data does not hold a ${keyType} key`)
}

/** An OpenSSH public key line (`type base64 [comment]`, a .pub file). Pure. */
export function parsePublicKey(text: string): { keyType: string; key: string; comment: string } {
  const line = text.trim()
  if (line.includes('\n')) throw bad('expected one public key, found several lines')
  const [keyType = '', key = '', ...rest] = line.split(/\s+/)
  verifyKeyBlob(keyType, key)
  return { keyType, key, comment: rest.join(' ') }
}

/** OpenSSH's fingerprint of a key blob: `SHA256:` and the unpadded base64 of its sha256. Pure. */
export function keyFingerprint(key: string): string {
  return `SHA256:${createHash('sha256').update(Buffer.from(key, 'base64')).digest('base64').replace(/=+$/, '')}`
}

/** Splits `a,b="x,y",c` at commas outside quotes. */
function splitOptions(s: string): string[] {
  return s.match(/(?:[^,"]+|"[^"]*")+/g) ?? []
}

/** Parses an allowed-signers file strictly; comments and blank lines are skipped. Pure. */
export function parseAllowedSigners(text: string, source = 'the allowed-signers file'): TrustedKey[] {
  const keys: TrustedKey[] = []
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim()
    if (!line || line.startsWith('#')) return
    const fail = (why: string): never => {
      throw new UpdateError('BAD_CONFIG', `${source}, line ${i + 1}: ${why}`, { hint: 'each line is `principal namespaces="upkeep-release" ssh-ed25519 AAAA…`; fix or re-pin with `upkeep app trust`' })
    }
    const tokens = line.match(/(?:[^\s"]|"[^"]*")+/g) ?? []
    const hasOptions = !KEY_TYPES.has(tokens[1] ?? '')
    const [principal = '', opts, keyType = '', key = '', ...comment] = hasOptions ? tokens : [tokens[0], undefined, ...tokens.slice(1)]
    if (!key) fail('not "principal [options] key-type key"')
    if (!PRINCIPAL.test(principal)) fail(`principal "${principal}" must be a plain name (letters, digits, . _ @ + -)`)
    const options: [string, string | true][] = []
    for (const o of opts ? splitOptions(opts) : []) {
      const om = /^([a-z-]+)(?:="([^"]*)")?$/.exec(o)
      if (!om || !OPTION_NAMES.has(om[1]!)) fail(`unknown option "${o}"`)
      options.push([om![1]!, om![2] ?? true])
    }
    try {
      verifyKeyBlob(keyType, key)
    } catch (err) {
      fail((err as Error).message)
    }
    keys.push({ principal, options, keyType, key, comment: comment.join(' ') })
  })
  return keys
}

export function formatAllowedSigners(keys: readonly TrustedKey[]): string {
  return keys
    .map((k) => {
      const opts = k.options.map(([n, v]) => (v === true ? n : `${n}="${v}"`)).join(',')
      return [k.principal, opts, k.keyType, k.key, k.comment].filter(Boolean).join(' ') + '\n'
    })
    .join('')
}

/** The pinned keys; none when the file does not exist. */
export async function readTrustedKeys(file: string): Promise<TrustedKey[]> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw err
  }
  return parseAllowedSigners(text, path.basename(file))
}

export async function writeTrustedKeys(file: string, keys: readonly TrustedKey[]): Promise<void> {
  await writeFileAtomic(file, `# Keys pinned for this app (ssh-keygen allowed-signers format). Change with: upkeep app trust\n${formatAllowedSigners(keys)}`, { mode: 0o644 })
}

export interface TrustChange {
  keys: TrustedKey[]
  added?: string
  removed: string[]
  /** The pinned key that signed the new one (rotation only). */
  signedBy?: string
}

/**
 * The operator's explicit pin (install/adopt time, or overriding a lost key): adds `publicKey`,
 * or with `replace` makes it the only key. No signature is asked for: the operator is the authority.
 */
export async function pinKey(file: string, o: { publicKey: string; principal: string; namespaces?: string[]; replace?: boolean }): Promise<TrustChange> {
  const pub = parsePublicKey(o.publicKey)
  if (!PRINCIPAL.test(o.principal)) throw bad(`principal "${o.principal}" must be a plain name (letters, digits, . _ @ + -)`)
  const namespaces = o.namespaces ?? DEFAULT_NAMESPACES
  if (namespaces.length === 0 || !namespaces.every((n) => /^[a-z0-9.@_-]+$/.test(n))) throw bad('namespaces must be plain names such as upkeep-release, git')
  const current = await readTrustedKeys(file)
  const entry: TrustedKey = { principal: o.principal, options: [['namespaces', namespaces.join(',')]], ...pub }
  const kept = o.replace ? [] : current.filter((k) => k.key !== pub.key)
  const removed = current.filter((k) => !kept.includes(k) && k.key !== pub.key).map((k) => keyFingerprint(k.key))
  const keys = [...kept, entry]
  await writeTrustedKeys(file, keys)
  return { keys, added: keyFingerprint(pub.key), removed }
}

/**
 * Rotation: pins `newKeyText` (the exact bytes of the new .pub file) only when `signature` is
 * `ssh-keygen -Y sign -f OLD -n upkeep-key-rotation new.pub` by a currently pinned key. The new
 * key inherits the signer's principal and namespaces. The signer's key is dropped (a rotation
 * retires it, and a leaked key must stop counting) unless `keepOld` keeps both for a transition.
 */
export async function rotateKey(run: RunTool, file: string, o: { newKeyText: string; signature: string; keepOld?: boolean }): Promise<TrustChange> {
  const pub = parsePublicKey(o.newKeyText)
  const current = await readTrustedKeys(file)
  const dir = await mkdtemp(path.join(os.tmpdir(), 'upkeep-rotate-'))
  try {
    // Any pinned key may vouch for a new one, whatever it is pinned to sign (its validity dates still hold).
    const rotationSigners = current.map((k) => ({ ...k, options: [...k.options.filter(([name]) => name !== 'namespaces'), ['namespaces', ROTATION_NAMESPACE] as [string, string]] }))
    await writeFile(path.join(dir, 'allowed'), formatAllowedSigners(rotationSigners))
    await writeFile(path.join(dir, 'new.pub'), o.newKeyText)
    await writeFile(path.join(dir, 'new.pub.sig'), o.signature)
    let signer
    try {
      signer = await verifySignature(run, {
        messageFile: path.join(dir, 'new.pub'),
        signatureFile: path.join(dir, 'new.pub.sig'),
        allowedSignersFile: path.join(dir, 'allowed'),
        namespace: ROTATION_NAMESPACE,
        what: `the new key ${keyFingerprint(pub.key)}`,
      })
    } catch (err) {
      if (isUpdateError(err)) {
        throw new UpdateError(err.code, err.message, {
          hint: `sign the new .pub file with a pinned key (ssh-keygen -Y sign -f OLD_KEY -n ${ROTATION_NAMESPACE} new.pub), or, without one, pin it explicitly as the operator`,
          cause: err,
        })
      }
      throw err
    }
    const signerKey = current.find((k) => keyFingerprint(k.key) === signer.fingerprint)
    if (!signerKey) throw new UpdateError('UNTRUSTED_SIGNER', `the new key was signed by ${signer.fingerprint}, which is not pinned`, { hint: 'sign it with a pinned key' })
    const already = current.find((k) => k.key === pub.key)
    const drop = !o.keepOld && signerKey.key !== pub.key
    const kept = current.filter((k) => k !== already && !(drop && k === signerKey))
    const entry: TrustedKey = already ?? { principal: signerKey.principal, options: signerKey.options, ...pub }
    const keys = [...kept, entry]
    await writeTrustedKeys(file, keys)
    return { keys, added: keyFingerprint(pub.key), removed: drop ? [signer.fingerprint] : [], signedBy: signer.fingerprint }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}
