import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { createRunTool } from '../../../updater/artifacts/run-tool'
import { verifySignature } from '../../../updater/artifacts/signature'
import { signFile, sshKeygen, type SshKey } from '../../support/artifacts'

// Real keys and signatures from ssh-keygen; each refusal names what is wrong.

const run = createRunTool()
let dir: string
let release: SshKey
let foreign: SshKey
let allowed: string

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'upkeep-sig-'))
  release = sshKeygen(dir, 'release')
  foreign = sshKeygen(dir, 'foreign')
  allowed = path.join(dir, 'trusted-keys')
  await writeFile(allowed, `# pinned\nrelease@acme namespaces="upkeep-release,git" ${release.pub}`)
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

async function signed(key: SshKey, opts: { namespace?: string; content?: string } = {}): Promise<{ messageFile: string; signatureFile: string }> {
  const sub = await mkdtemp(path.join(dir, 's-'))
  const messageFile = path.join(sub, 'SHA256SUMS')
  await writeFile(messageFile, opts.content ?? `${'a'.repeat(64)}  widget-1.2.0.tar.gz\n`)
  await signFile(key, messageFile, opts.namespace)
  return { messageFile, signatureFile: `${messageFile}.sig` }
}

const what = 'SHA256SUMS of widget v1.2.0'

describe('verifySignature', () => {
  test('a signature by the pinned key verifies and names its signer', async () => {
    const files = await signed(release)
    expect(await verifySignature(run, { ...files, allowedSignersFile: allowed, what })).toEqual({ principal: 'release@acme', fingerprint: release.fingerprint })
  })

  test('a missing signature', async () => {
    const files = await signed(release)
    await rm(files.signatureFile)
    await expect(verifySignature(run, { ...files, allowedSignersFile: allowed, what })).rejects.toMatchObject({
      code: 'SIGNATURE_MISSING',
      message: 'SHA256SUMS of widget v1.2.0 is not signed: no signature was published',
    })
  })

  test('a file that is not an SSH signature', async () => {
    const files = await signed(release)
    await writeFile(files.signatureFile, '-----BEGIN PGP SIGNATURE-----\nabc\n-----END PGP SIGNATURE-----\n')
    await expect(verifySignature(run, { ...files, allowedSignersFile: allowed, what })).rejects.toMatchObject({ code: 'SIGNATURE_INVALID', message: /is not an SSH signature/ })
  })

  test('a bad signature: SHA256SUMS changed after signing', async () => {
    const files = await signed(release)
    await writeFile(files.messageFile, `${'b'.repeat(64)}  widget-1.2.0.tar.gz\n`)
    await expect(verifySignature(run, { ...files, allowedSignersFile: allowed, what })).rejects.toMatchObject({
      code: 'SIGNATURE_INVALID',
      message: 'the signature of SHA256SUMS of widget v1.2.0 is bad: incorrect signature',
    })
  })

  test('a bad signature: a damaged signature file', async () => {
    const files = await signed(release)
    const sig = await readFile(files.signatureFile, 'utf8')
    const lines = sig.split('\n')
    lines[3] = lines[3]!.replace(/[A-Za-z]/, (c) => (c === 'A' ? 'B' : 'A'))
    await writeFile(files.signatureFile, lines.join('\n'))
    await expect(verifySignature(run, { ...files, allowedSignersFile: allowed, what })).rejects.toMatchObject({ code: 'SIGNATURE_INVALID', message: /is bad: / })
  })

  test('a signature made in another namespace (a git signature passed off as a release one)', async () => {
    const files = await signed(release, { namespace: 'git' })
    await expect(verifySignature(run, { ...files, allowedSignersFile: allowed, what })).rejects.toMatchObject({
      code: 'SIGNATURE_INVALID',
      message: /is bad: .*namespace does not match/,
    })
  })

  test('a valid signature by a foreign key', async () => {
    const files = await signed(foreign)
    await expect(verifySignature(run, { ...files, allowedSignersFile: allowed, what })).rejects.toMatchObject({
      code: 'UNTRUSTED_SIGNER',
      message: `SHA256SUMS of widget v1.2.0 is signed by key ${foreign.fingerprint}, which is not pinned for this app`,
      hint: expect.stringMatching(/upkeep app trust/),
    })
  })

  test('a key pinned for tags only does not sign releases', async () => {
    const tagsOnly = path.join(dir, 'tags-only')
    await writeFile(tagsOnly, `release@acme namespaces="git" ${release.pub}`)
    const files = await signed(release)
    await expect(verifySignature(run, { ...files, allowedSignersFile: tagsOnly, what })).rejects.toMatchObject({
      code: 'UNTRUSTED_SIGNER',
      message: /is pinned but not for "upkeep-release" signatures/,
    })
  })

  test('no key pinned at all', async () => {
    const files = await signed(release)
    await expect(verifySignature(run, { ...files, allowedSignersFile: path.join(dir, 'none'), what })).rejects.toMatchObject({
      code: 'UNTRUSTED_SIGNER',
      message: /no signing key is pinned for this app/,
    })
  })
})
