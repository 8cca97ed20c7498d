import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { createRunTool } from '../../../updater/artifacts/run-tool'
import { verifySignature } from '../../../updater/artifacts/signature'
import { formatAllowedSigners, keyFingerprint, parseAllowedSigners, parsePublicKey, pinKey, readTrustedKeys, rotateKey } from '../../../updater/artifacts/trust'
import { signFile, sshKeygen, type SshKey } from '../../support/artifacts'

const run = createRunTool()
let dir: string
let oldKey: SshKey
let newKey: SshKey
let stranger: SshKey
let n = 0

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'upkeep-trust-'))
  oldKey = sshKeygen(dir, 'old')
  newKey = sshKeygen(dir, 'new')
  stranger = sshKeygen(dir, 'stranger')
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

/** A fresh trusted-keys file with `oldKey` pinned by the operator. */
async function pinnedFile(): Promise<string> {
  const file = path.join(dir, `trusted-keys-${++n}`)
  await pinKey(file, { publicKey: oldKey.pub, principal: 'release@acme' })
  return file
}

/** `ssh-keygen -Y sign -n upkeep-key-rotation new.pub` by `by`. */
async function rotationSignature(by: SshKey, namespace = 'upkeep-key-rotation'): Promise<string> {
  const sub = await mkdtemp(path.join(dir, 'rot-'))
  await writeFile(path.join(sub, 'new.pub'), newKey.pub)
  return signFile(by, path.join(sub, 'new.pub'), namespace)
}

describe('allowed-signers files', () => {
  test('parse and format round-trip, with and without options', () => {
    const key = parsePublicKey(oldKey.pub)
    const text = `# comment\n\nrelease@acme namespaces="upkeep-release,git",valid-after="20260101" ${key.keyType} ${key.key} old@test\nops@acme ${key.keyType} ${key.key}\n`
    const keys = parseAllowedSigners(text)
    expect(keys).toEqual([
      { principal: 'release@acme', options: [['namespaces', 'upkeep-release,git'], ['valid-after', '20260101']], keyType: 'ssh-ed25519', key: key.key, comment: 'old@test' },
      { principal: 'ops@acme', options: [], keyType: 'ssh-ed25519', key: key.key, comment: '' },
    ])
    expect(parseAllowedSigners(formatAllowedSigners(keys))).toEqual(keys)
  })

  test('fingerprints match ssh-keygen -l', () => {
    expect(keyFingerprint(parsePublicKey(oldKey.pub).key)).toBe(oldKey.fingerprint)
  })

  test.each([
    ['a wildcard principal', (k: string) => `*@acme ssh-ed25519 ${k}`, /principal "\*@acme" must be a plain name/],
    ['an unknown option', (k: string) => `a@b command="sh" ssh-ed25519 ${k}`, /unknown option "command="sh""/],
    ['a key of another type than it says', (k: string) => `a@b ssh-rsa ${k}`, /does not hold a ssh-rsa key/],
    ['a truncated line', () => 'a@b ssh-ed25519', /not "principal \[options\] key-type key"/],
    ['not base64', () => 'a@b ssh-ed25519 !!!', /not base64/],
  ])('refuses %s', (_n, line, message) => {
    expect(() => parseAllowedSigners(line(parsePublicKey(oldKey.pub).key))).toThrow(message)
  })

  test('the file pinKey writes is one ssh-keygen accepts', async () => {
    const file = await pinnedFile()
    expect(await readFile(file, 'utf8')).toMatch(/^# Keys pinned for this app.*\nrelease@acme namespaces="upkeep-release,git" ssh-ed25519 AAAA\S+ old@test\n$/)
    const sums = path.join(dir, `SUMS-${n}`)
    await writeFile(sums, 'x\n')
    await signFile(oldKey, sums)
    expect(await verifySignature(run, { messageFile: sums, signatureFile: `${sums}.sig`, allowedSignersFile: file, what: 'SUMS' })).toEqual({ principal: 'release@acme', fingerprint: oldKey.fingerprint })
  })
})

describe('pinKey (the operator\'s explicit command)', () => {
  test('adds a key, or replaces all with replace', async () => {
    const file = await pinnedFile()
    const added = await pinKey(file, { publicKey: newKey.pub, principal: 'release@acme', namespaces: ['upkeep-release'] })
    expect(added).toMatchObject({ added: newKey.fingerprint, removed: [] })
    expect((await readTrustedKeys(file)).map((k) => keyFingerprint(k.key))).toEqual([oldKey.fingerprint, newKey.fingerprint])
    const replaced = await pinKey(file, { publicKey: stranger.pub, principal: 'ops', replace: true })
    expect(replaced.removed.sort()).toEqual([oldKey.fingerprint, newKey.fingerprint].sort())
    expect((await readTrustedKeys(file)).map((k) => keyFingerprint(k.key))).toEqual([stranger.fingerprint])
  })

  test('refuses what is not a public key', async () => {
    await expect(pinKey(path.join(dir, 'x'), { publicKey: '-----BEGIN OPENSSH PRIVATE KEY-----', principal: 'a' })).rejects.toMatchObject({ code: 'BAD_CONFIG' })
  })
})

describe('rotateKey', () => {
  test('a new key signed by the pinned key replaces it, inheriting its principal and namespaces', async () => {
    const file = await pinnedFile()
    const change = await rotateKey(run, file, { newKeyText: newKey.pub, signature: await rotationSignature(oldKey) })
    expect(change).toMatchObject({ added: newKey.fingerprint, removed: [oldKey.fingerprint], signedBy: oldKey.fingerprint })
    const keys = await readTrustedKeys(file)
    expect(keys).toEqual([{ principal: 'release@acme', options: [['namespaces', 'upkeep-release,git']], ...parsePublicKey(newKey.pub) }])
  })

  test('keepOld keeps both keys for a transition', async () => {
    const file = await pinnedFile()
    const change = await rotateKey(run, file, { newKeyText: newKey.pub, signature: await rotationSignature(oldKey), keepOld: true })
    expect(change.removed).toEqual([])
    expect((await readTrustedKeys(file)).map((k) => keyFingerprint(k.key))).toEqual([oldKey.fingerprint, newKey.fingerprint])
  })

  test.each([
    ['signed by a key that is not pinned', () => rotationSignature(stranger), 'UNTRUSTED_SIGNER', /signed by key .* which is not pinned/],
    ['signed in the release namespace (a release signature replayed)', () => rotationSignature(oldKey, 'upkeep-release'), 'SIGNATURE_INVALID', /namespace does not match/],
    ['without a signature', async () => '', 'SIGNATURE_MISSING', /not signed/],
  ])('refuses a new key %s, and changes nothing', async (_n, signature, code, message) => {
    const file = await pinnedFile()
    const before = await readFile(file, 'utf8')
    await expect(rotateKey(run, file, { newKeyText: newKey.pub, signature: await signature() })).rejects.toMatchObject({
      code,
      message,
      hint: expect.stringMatching(/ssh-keygen -Y sign -f OLD_KEY -n upkeep-key-rotation new.pub/),
    })
    expect(await readFile(file, 'utf8')).toBe(before)
  })

  test('refuses a signature over another key than the one offered', async () => {
    const file = await pinnedFile()
    await expect(rotateKey(run, file, { newKeyText: stranger.pub, signature: await rotationSignature(oldKey) })).rejects.toMatchObject({ code: 'SIGNATURE_INVALID', message: /incorrect signature/ })
    expect((await readTrustedKeys(file)).map((k) => keyFingerprint(k.key))).toEqual([oldKey.fingerprint])
  })
})
