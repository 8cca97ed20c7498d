import { copyFile, mkdir, stat } from 'node:fs/promises'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import type { HistoryEntry } from '../../updater/shared/history'
import { ensureCommand } from '../support/apt'
import { signFile, sshKeygen, startFileServer, type FileServer, type SshKey } from '../support/artifacts'
import { INSTALL_DIR as DIR, startUpkeepSandbox, type UpkeepSandbox } from '../support/installed-upkeep'
import { prepareRelease, serveRelease } from '../support/release-artifacts'
import type { Sandbox } from '../support/sandbox'
import { upkeepApi, type UpkeepApi } from '../support/upkeep-api'

// Issue 13 on a real systemd: install.sh pins Upkeep's release key (--release-key), a local
// release server (plain http on loopback, an https URL pattern otherwise) serves the artifacts
// deploy/release.ts made of v1.1.0 and v1.2.0, and the updater unit installs them: 1.0.0 → 1.1.0
// from the artifact signed with the pinned key; v1.2.0, signed with a new key, refused until the
// key is rotated (`upkeep app trust upkeep --key new.pub --signature new.pub.sig`), then installed.

const ADMIN_PASSWORD = 'correct horse battery staple'
const SIGNERS = '/etc/upkeep/apps/upkeep.allowed_signers'

describe('verified updates of an installed Upkeep', () => {
  let box: UpkeepSandbox
  let sb: Sandbox
  let api: UpkeepApi
  let files: FileServer
  let oldKey: SshKey
  let newKey: SshKey
  let installOutput: string

  const node = async () => (await sb.execOk('sh', ['-c', 'command -v node'])).trim()
  const upkeep = async (args: string[]) => sb.exec(await node(), [`${DIR}/current/upkeep.mjs`, ...args], { cwd: DIR, timeoutMs: 60_000 })
  const live = async () => ({ current: (await sb.execOk('readlink', [`${DIR}/current`])).trim(), health: await box.health() })

  beforeAll(async () => {
    ensureCommand('ssh-keygen', ['openssh-client'], { purpose: 'signed releases' })
    box = await startUpkeepSandbox({ label: 'verified', releases: [{ tag: 'v1.0.0' }, { tag: 'v1.1.0' }, { tag: 'v1.2.0' }] })
    sb = box.sb
    const keys = path.join(box.work, 'keys')
    await mkdir(keys, { mode: 0o755 })
    oldKey = sshKeygen(keys, 'old')
    newKey = sshKeygen(keys, 'new')
    // The release workflow's own script on tags of a throwaway clone of the origin.
    const v110 = await prepareRelease({ origin: box.origin.bare, tag: 'v1.1.0', keyFile: oldKey.file, work: box.work })
    const v120 = await prepareRelease({ origin: box.origin.bare, tag: 'v1.2.0', keyFile: newKey.file, work: box.work })
    files = await startFileServer()
    const url = await serveRelease(files, 'v1.1.0', v110.dist)
    await serveRelease(files, 'v1.2.0', v120.dist)
    // GitHub is out of reach; the artifacts come from the release server named in upkeep.env.
    await sb.writeFile('/etc/upkeep/upkeep.env', `GITHUB_API_URL=http://127.0.0.1:9\nUPKEEP_ARTIFACTS_URL=${url}\n`, '600')
    const r = await box.installRelease('v1.0.0', ['--release-key', `${oldKey.file}.pub`], { UPKEEP_ADMIN_PASSWORD: ADMIN_PASSWORD })
    if (r.code !== 0) throw new Error(`install.sh failed:\n${r.stdout}\n${r.stderr}`)
    installOutput = r.stdout
    api = await upkeepApi(`http://127.0.0.1:${box.port}`, ADMIN_PASSWORD)
  }, 900_000)
  afterAll(async () => {
    await box?.close()
    await files?.close()
  })

  test('install.sh --release-key pins the key: root’s, 0644, for releases and tags', async () => {
    expect(installOutput).toContain(`+ pin the release key in ${SIGNERS} (root's, mode 0644)`)
    expect((await sb.execOk('stat', ['-c', '%U %a', SIGNERS])).trim()).toBe('root 644')
    const [type, blob] = oldKey.pub.split(' ')
    expect(await sb.execOk('cat', [SIGNERS])).toContain(`upkeep-release namespaces="upkeep-release,git" ${type} ${blob}\n`)
    expect((await box.health()).version).toBe('1.0.0')
  })

  test('1.0.0 → 1.1.0 from the signed artifact, through the API: verified by the pinned key, switched, healthy', async () => {
    const id = await api.startUpdate('1.1.0')
    const entry = await api.waitForUpdate(id)
    console.log(`1.0.0 → 1.1.0 from the artifact: ${entry.status} in ${entry.durationMs} ms (${entry.steps.map((s) => `${s.name} ${s.durationMs}ms`).join(', ')})`)
    expect(entry).toMatchObject({ status: 'complete', to: { version: '1.1.0', installedFrom: { kind: 'artifact', signer: 'upkeep-release', fingerprint: oldKey.fingerprint } } })
    expect(await box.health()).toMatchObject({ status: 'ok', version: '1.1.0', commit: box.origin.commits['v1.1.0'] })
    expect(files.requests.map((r) => r.path)).toEqual(['/v1.1.0/SHA256SUMS', '/v1.1.0/SHA256SUMS.sig', '/v1.1.0/upkeep-1.1.0.tar.gz'])
    // No source build: the live log has no build command, the release is the tarball's build.
    const events = await api.events()
    expect(events.filter((e) => e.type === 'log' && e.message.startsWith('$ '))).toEqual([])
    expect(events.some((e) => e.type === 'log' && e.message === `SHA256SUMS is signed by upkeep-release (${oldKey.fingerprint})`)).toBe(true)
    const status = await api.get<{ current: { version: string; installedFrom?: unknown } }>('/api/updates')
    expect(status.current).toMatchObject({ version: '1.1.0', installedFrom: { kind: 'artifact', fingerprint: oldKey.fingerprint } })
  }, 300_000)

  test('v1.2.0, signed with a key that is not pinned yet: refused, nothing switched, the history says why', async () => {
    const before = await live()
    const id = await api.startUpdate('1.2.0')
    const entry = await api.waitForUpdate(id)
    expect(entry).toMatchObject({ status: 'failed', error: { code: 'UNTRUSTED_SIGNER', step: 'build' } })
    expect(entry.error!.message).toContain(`signed by key ${newKey.fingerprint}, which is not pinned for this app`)
    expect(entry.error!.hint).toContain('upkeep app trust')
    expect(await live()).toEqual(before)
    // Only the small files were fetched: the tarball of an untrusted release is never downloaded.
    expect(files.requests.map((r) => r.path).filter((p) => p.startsWith('/v1.2.0/'))).toEqual(['/v1.2.0/SHA256SUMS', '/v1.2.0/SHA256SUMS.sig'])
  }, 300_000)

  test('the key is rotated with the old key’s signature over the new one (upkeep app trust), then 1.1.0 → 1.2.0 installs', async () => {
    // The maintainer signs the new .pub with the old key; the operator hands both to Upkeep.
    const handover = path.join(box.work, 'handover')
    await mkdir(handover, { mode: 0o755 })
    await copyFile(`${newKey.file}.pub`, path.join(handover, 'new.pub'))
    await signFile(oldKey, path.join(handover, 'new.pub'), 'upkeep-key-rotation')
    expect((await stat(path.join(handover, 'new.pub.sig'))).size).toBeGreaterThan(0)
    const trust = await upkeep(['app', 'trust', 'upkeep', '--key', path.join(handover, 'new.pub'), '--signature', path.join(handover, 'new.pub.sig')])
    expect(trust.code, trust.stderr).toBe(0)
    expect(trust.stdout).toContain(`upkeep: pinned ${newKey.fingerprint} as upkeep-release`)
    expect(trust.stdout).toContain(`signed by the pinned key ${oldKey.fingerprint}`)
    expect(trust.stdout).toContain(`no longer trusted: ${oldKey.fingerprint}`)
    expect((await sb.execOk('stat', ['-c', '%U %a', SIGNERS])).trim()).toBe('root 644')

    const id = await api.startUpdate('1.2.0')
    const entry: HistoryEntry = await api.waitForUpdate(id)
    console.log(`1.1.0 → 1.2.0 after the rotation: ${entry.status} in ${entry.durationMs} ms`)
    expect(entry).toMatchObject({ status: 'complete', from: { version: '1.1.0' }, to: { version: '1.2.0', installedFrom: { kind: 'artifact', signer: 'upkeep-release', fingerprint: newKey.fingerprint } } })
    expect(await box.health()).toMatchObject({ status: 'ok', version: '1.2.0', commit: box.origin.commits['v1.2.0'] })
  }, 300_000)

  test('`upkeep history` keeps how each release was installed and why one was refused', async () => {
    const r = await sb.execOk('runuser', ['-u', 'upkeep', '--', await node(), `${DIR}/current/upkeep.mjs`, 'history'], { cwd: DIR })
    console.log(r.trim())
    const rows = r.trim().split('\n').slice(1)
    expect(rows).toHaveLength(3)
    expect(rows[0]).toMatch(/1\.1\.0 → 1\.2\.0\s+complete\s+\S+\s+artifact, verified by upkeep-release \(SHA256:/)
    expect(rows[1]).toMatch(/1\.1\.0 → 1\.2\.0\s+failed\s+.*UNTRUSTED_SIGNER/)
    expect(rows[2]).toMatch(/1\.0\.0 → 1\.1\.0\s+complete\s+\S+\s+artifact, verified by upkeep-release \(SHA256:/)
  })
})
