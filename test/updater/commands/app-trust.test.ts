import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest'
import { keyFingerprint, parseAllowedSigners } from '../../../updater/artifacts/trust'
import { ensureCommand } from '../../support/apt'
import { signFile, sshKeygen, type SshKey } from '../../support/artifacts'
import { OWNER } from '../../support/fixture-app'
import { repoRoot } from '../../support/paths'
import { run } from '../../support/run'

// `upkeep app trust`, the real command: the keys an app's signed releases and tags are verified
// with, in a file of root's beside its definition. A new key is taken when a pinned key signed it
// (namespace upkeep-key-rotation), or when the operator overrides with --replace.

let root: string
let appsDir: string
let signers: string
let keys: Record<'first' | 'second' | 'third' | 'stranger', SshKey>

const trust = (args: string[], opts: { uid?: number } = {}) =>
  run(process.execPath, [path.join(repoRoot, 'updater/bin.mjs'), 'app', 'trust', ...args], {
    cwd: root,
    env: { PATH: process.env.PATH, DATA_DIR: path.join(root, 'data'), UPKEEP_APPS_DIR: appsDir, UPKEEP_STATE_DIR: path.join(root, 'state'), UPKEEP_SERVICE_MANAGER: 'process' },
    ...(opts.uid !== undefined ? { uid: opts.uid, gid: opts.uid } : {}),
    timeoutMs: 60_000,
  })
const pub = (k: SshKey) => `${k.file}.pub`
/** The fingerprints pinned now, in file order. */
const pinned = async () => {
  const text = await readFile(signers, 'utf8').catch(() => '')
  return parseAllowedSigners(text).map((k) => keyFingerprint(k.key))
}
let signatures = 0
/** `ssh-keygen -Y sign -f BY -n NAMESPACE new.pub` on a fresh copy of the .pub; returns the .sig. */
const rotation = async (by: SshKey, of: SshKey, namespace = 'upkeep-key-rotation') => {
  const dir = path.join(root, `signature-${++signatures}`)
  await mkdir(dir)
  await copyFile(pub(of), path.join(dir, path.basename(pub(of))))
  await signFile(by, path.join(dir, path.basename(pub(of))), namespace)
  return path.join(dir, `${path.basename(pub(of))}.sig`)
}

beforeAll(async () => {
  ensureCommand('ssh-keygen', ['openssh-client'], { purpose: 'pinned release keys' })
  root = await mkdtemp(path.join(tmpdir(), 'upkeep-trust-'))
  await chmod(root, 0o755)
  appsDir = path.join(root, 'apps')
  await mkdir(appsDir)
  const checkout = path.join(root, 'widget')
  await mkdir(checkout)
  await writeFile(path.join(appsDir, 'widget.json'), JSON.stringify({ name: 'widget', checkout, run: { units: ['widget.service'] }, health: { url: 'http://127.0.0.1:9/health' } }), { mode: 0o644 })
  signers = path.join(appsDir, 'widget.allowed_signers')
  const dir = path.join(root, 'keys')
  await mkdir(dir)
  await chmod(dir, 0o755)
  keys = { first: sshKeygen(dir, 'first'), second: sshKeygen(dir, 'second'), third: sshKeygen(dir, 'third'), stranger: sshKeygen(dir, 'stranger') }
  for (const k of Object.values(keys)) await chmod(pub(k), 0o644)
})
afterAll(() => rm(root, { recursive: true, force: true }))

describe('upkeep app trust', () => {
  beforeEach(async () => {
    await rm(signers, { force: true })
  })

  test('the first key is pinned by the operator: root’s file, 0644, for releases and tags', async () => {
    const r = await trust(['widget', '--key', pub(keys.first)])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain(`widget: pinned ${keys.first.fingerprint} as widget-release (upkeep-release,git)`)
    expect(r.stdout).toContain('pinned by the operator (no signature asked for)')
    const s = await stat(signers)
    expect([s.uid, s.mode & 0o777]).toEqual([0, 0o644])
    expect(await readFile(signers, 'utf8')).toContain(`widget-release namespaces="upkeep-release,git" ${keys.first.pub.split(' ').slice(0, 2).join(' ')}`)
    expect(await pinned()).toEqual([keys.first.fingerprint])
  })

  test('another key without the pinned key’s signature is refused and changes nothing', async () => {
    await trust(['widget', '--key', pub(keys.first)])
    const r = await trust(['widget', '--key', pub(keys.second)])
    expect(r.code).toBe(1)
    expect(r.stderr).toContain(`UNTRUSTED_SIGNER: widget already has 1 pinned key(s) (${keys.first.fingerprint}): a new one needs the old key's signature`)
    expect(r.stderr).toContain('ssh-keygen -Y sign -f OLD_KEY -n upkeep-key-rotation second.pub')
    expect(await pinned()).toEqual([keys.first.fingerprint])
  })

  test('a rotation signed by the pinned key replaces it; the new key keeps its principal', async () => {
    await trust(['widget', '--key', pub(keys.first), '--principal', 'release@acme'])
    const r = await trust(['widget', '--key', pub(keys.second), '--signature', await rotation(keys.first, keys.second)])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain(`signed by the pinned key ${keys.first.fingerprint}`)
    expect(r.stdout).toContain(`no longer trusted: ${keys.first.fingerprint}`)
    expect(await pinned()).toEqual([keys.second.fingerprint])
    expect(await readFile(signers, 'utf8')).toMatch(/^release@acme namespaces="upkeep-release,git" ssh-ed25519 /m)
  })

  test('--keep-old keeps the signing key beside the new one, for a transition', async () => {
    await trust(['widget', '--key', pub(keys.first)])
    const r = await trust(['widget', '--key', pub(keys.third), '--signature', await rotation(keys.first, keys.third), '--keep-old'])
    expect(r.code, r.stderr).toBe(0)
    expect(await pinned()).toEqual([keys.first.fingerprint, keys.third.fingerprint])
  })

  test.each([
    ['signed by a key that is not pinned', () => rotation(keys.stranger, keys.second), 'UNTRUSTED_SIGNER'],
    ['signed by the pinned key, but as a release (another namespace)', () => rotation(keys.first, keys.second, 'upkeep-release'), 'SIGNATURE_INVALID'],
  ])('a rotation %s is refused and changes nothing', async (_what, sign, code) => {
    await trust(['widget', '--key', pub(keys.first)])
    const r = await trust(['widget', '--key', pub(keys.second), '--signature', await sign()])
    expect(r.code).toBe(1)
    expect(r.stderr).toContain(`${code}:`)
    expect(r.stderr).toContain('hint: sign the new .pub file with a pinned key')
    expect(await pinned()).toEqual([keys.first.fingerprint])
  })

  test('--replace is the operator’s override: the new key alone, no signature', async () => {
    await trust(['widget', '--key', pub(keys.first)])
    const r = await trust(['widget', '--key', pub(keys.stranger), '--replace'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain(`no longer trusted: ${keys.first.fingerprint}`)
    expect(await pinned()).toEqual([keys.stranger.fingerprint])
  })

  test('the app’s user (or anyone but root) cannot pin: FORBIDDEN, with the command to run as root', async () => {
    await trust(['widget', '--key', pub(keys.first)])
    const r = await trust(['widget', '--key', pub(keys.stranger), '--replace'], { uid: OWNER.uid })
    expect(r.code).toBe(1)
    expect(r.stderr).toContain(`FORBIDDEN: the pinned keys in ${appsDir} are root's`)
    expect(r.stderr).toContain('hint: run it as root: sudo upkeep app trust widget')
    expect(await pinned()).toEqual([keys.first.fingerprint])
  })

  test.each([
    ['no key', ['widget'], '--key names the new public key'],
    ['--keep-old without a signature', ['widget', '--key', 'k.pub', '--keep-old'], '--keep-old keeps the key that signed the new one'],
    ['--signature and --replace', ['widget', '--key', 'k.pub', '--signature', 's', '--replace'], 'exclude each other'],
    ['two app names', ['widget', 'other', '--key', 'k.pub'], 'trust takes one app name'],
  ])('usage errors exit 2: %s', async (_what, args, message) => {
    const r = await trust(args)
    expect(r.code).toBe(2)
    expect(r.stderr).toContain(message)
  })

  test('a file that is not a public key, and an unknown app, are refused with what to do', async () => {
    await writeFile(path.join(root, 'not-a-key.pub'), 'hello\n')
    const bad = await trust(['widget', '--key', path.join(root, 'not-a-key.pub')])
    expect(bad.code).toBe(1)
    expect(bad.stderr).toContain('BAD_CONFIG: unsupported key type "hello"')
    const unknown = await trust(['gizmo', '--key', pub(keys.first)])
    expect(unknown.code).toBe(1)
    expect(unknown.stderr).toContain('NOT_FOUND: no app definition at')
  })
})
