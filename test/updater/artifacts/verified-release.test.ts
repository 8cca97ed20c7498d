import { lstat, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest'
import { createRunTool } from '../../../updater/artifacts/run-tool'
import { pinKey } from '../../../updater/artifacts/trust'
import { fetchVerifiedRelease, type FetchReleaseOptions } from '../../../updater/artifacts/verified-release'
import type { Progress } from '../../../updater/artifacts/download'
import { UpdateError } from '../../../updater/shared/errors'
import { goodEntries, makeTarGz, sha256, signFile, sshKeygen, startFileServer, type FileServer, type SshKey, type TarEntry } from '../../support/artifacts'

// Must show 2, end to end: a release served over HTTP from a URL pattern, with hostile variants.
// Each is refused with its own error, and no staging directory is left to switch to.

const run = createRunTool()
let server: FileServer
let dir: string
let maintainer: SshKey
let stranger: SshKey
let allowed: string
let n = 0
const NAME = 'widget-1.2.0.tar.gz'

beforeAll(async () => {
  server = await startFileServer()
  dir = await mkdtemp(path.join(tmpdir(), 'upkeep-release-'))
  maintainer = sshKeygen(dir, 'maintainer')
  stranger = sshKeygen(dir, 'stranger')
  allowed = path.join(dir, 'trusted-keys')
  await pinKey(allowed, { publicKey: maintainer.pub, principal: 'release@acme' })
})
afterAll(async () => {
  await server.close()
  await rm(dir, { recursive: true, force: true })
})
beforeEach(() => {
  server.files.clear()
  server.requests.length = 0
})

interface Publish {
  entries?: TarEntry[]
  /** The tarball served instead of the one summed and signed. */
  servedTarball?: Buffer
  sums?: string
  signWith?: SshKey | null
  /** Signs this text instead of the SHA256SUMS served. */
  signOther?: string
}

/** Publishes widget 1.2.0 at /widget/1.2.0/ as a maintainer would (or not quite). */
async function publish(p: Publish = {}): Promise<{ tarball: Buffer }> {
  const tarball = await makeTarGz(p.entries ?? goodEntries())
  const sums = p.sums ?? `${sha256(tarball)}  ${NAME}\n`
  const work = await mkdtemp(path.join(dir, 'publish-'))
  await writeFile(path.join(work, 'SHA256SUMS'), p.signOther ?? sums)
  server.files.set(`/widget/1.2.0/${NAME}`, { body: p.servedTarball ?? tarball })
  server.files.set('/widget/1.2.0/SHA256SUMS', { body: Buffer.from(sums) })
  if (p.signWith !== null) {
    const sig = await signFile(p.signWith ?? maintainer, path.join(work, 'SHA256SUMS'))
    server.files.set('/widget/1.2.0/SHA256SUMS.sig', { body: Buffer.from(sig) })
  }
  return { tarball }
}

function options(extra: Partial<FetchReleaseOptions> = {}): FetchReleaseOptions & { staging: string; downloadDir: string } {
  n++
  return {
    source: { url: `${server.url}/widget/{version}/widget-{version}.tar.gz` },
    app: 'widget',
    version: '1.2.0',
    tag: 'v1.2.0',
    downloadDir: path.join(dir, `downloads-${n}`),
    staging: path.join(dir, `staging-${n}`),
    allowedSignersFile: allowed,
    fetch,
    now: () => new Date(),
    run,
    ...extra,
  } as FetchReleaseOptions & { staging: string; downloadDir: string }
}

const exists = (p: string) => lstat(p).then(() => true, () => false)

async function refused(o: FetchReleaseOptions): Promise<UpdateError> {
  const err = await fetchVerifiedRelease(o).catch((e: unknown) => e)
  expect(err).toBeInstanceOf(UpdateError)
  expect(await exists(o.staging), 'nothing left in staging').toBe(false)
  expect((await readdir(dir)).filter((f) => f.includes('.unpack-'))).toEqual([])
  return err as UpdateError
}

describe('fetchVerifiedRelease', () => {
  test('a signed release is verified and unpacked into staging', async () => {
    const { tarball } = await publish()
    const o = options()
    const progress: Progress[] = []
    const lines: string[] = []
    const result = await fetchVerifiedRelease({ ...o, onProgress: (p) => progress.push(p), log: (l) => lines.push(l) })
    expect(result).toMatchObject({
      staging: o.staging,
      artifact: NAME,
      sha256: sha256(tarball),
      signer: { principal: 'release@acme', fingerprint: maintainer.fingerprint },
      downloaded: tarball.length,
      resumedFrom: 0,
      unpacked: { files: 3, stripped: 'widget-1.2.0' },
    })
    expect(await readFile(path.join(o.staging, 'server.mjs'), 'utf8')).toMatch(/widget 1\.2\.0/)
    expect(progress.at(-1)).toEqual({ done: tarball.length, total: tarball.length })
    expect(lines).toContain(`SHA256SUMS is signed by release@acme (${maintainer.fingerprint})`)
    expect(await exists(o.downloadDir)).toBe(false)
  })

  test('a tarball whose checksum differs: refused and deleted', async () => {
    await publish({ servedTarball: await makeTarGz([{ name: 'widget-1.2.0/server.mjs', content: 'evil' }]) })
    const o = options()
    const err = await refused(o)
    expect(err).toMatchObject({ code: 'CHECKSUM_MISMATCH', message: expect.stringMatching(/^widget-1\.2\.0\.tar\.gz does not match its checksum/) })
    expect(await exists(path.join(o.downloadDir, NAME))).toBe(false)
  })

  test.each<[string, () => Publish, string, RegExp]>([
    ['a missing signature', () => ({ signWith: null }), 'SIGNATURE_MISSING', /SHA256SUMS of widget v1\.2\.0 is not signed/],
    ['a bad signature (made over another SHA256SUMS)', () => ({ signOther: `${'0'.repeat(64)}  ${NAME}\n` }), 'SIGNATURE_INVALID', /is bad: incorrect signature/],
    ['a foreign key\'s signature', () => ({ signWith: stranger }), 'UNTRUSTED_SIGNER', /signed by key SHA256:\S+, which is not pinned for this app/],
    ['SHA256SUMS naming another file', () => ({ sums: `${'a'.repeat(64)}  widget-1.1.0.tar.gz\n` }), 'CHECKSUM_MISMATCH', /SHA256SUMS has no checksum for widget-1\.2\.0\.tar\.gz \(it lists widget-1\.1\.0\.tar\.gz\)/],
  ])('%s: refused before the tarball is downloaded', async (_n, spec, code, message) => {
    await publish(spec())
    const err = await refused(options())
    expect(err).toMatchObject({ code, message })
    expect(server.requests.map((r) => r.path)).not.toContain(`/widget/1.2.0/${NAME}`)
  })

  const inside = (e: TarEntry[]): TarEntry[] => [...goodEntries(), ...e]
  test.each<[string, TarEntry[], RegExp]>([
    ['a ../ entry', inside([{ name: 'widget-1.2.0/../../../home/app/.bashrc', content: 'x' }]), /has a "\.\." component/],
    ['an absolute path', inside([{ name: '/etc/cron.d/widget', content: 'x' }]), /has an absolute path/],
    ['a symlink out of the release', inside([{ name: 'widget-1.2.0/data', type: 'symlink', linkname: '../../../var/lib' }]), /points outside the release/],
    ['a hardlink', inside([{ name: 'widget-1.2.0/shadow', type: 'link', linkname: '/etc/shadow' }]), /is a hardlink/],
    ['a device file', inside([{ name: 'widget-1.2.0/mem', type: 'character-device' }]), /is a device file/],
    ['a setuid bit', inside([{ name: 'widget-1.2.0/bin/su', content: 'x', mode: 0o4755 }]), /has the setuid bit/],
  ])('a signed and summed archive with %s: refused, nothing unpacked', async (_n, entries, message) => {
    await publish({ entries })
    const err = await refused(options())
    expect(err).toMatchObject({ code: 'UNSAFE_ARCHIVE', message })
  })

  test('an archive that unpacks past the size limit', async () => {
    await publish({ entries: [{ name: 'widget-1.2.0/zeros', content: Buffer.alloc(4 << 20) }] })
    const err = await refused(options({ limits: { unpackedBytes: 1 << 20 } }))
    expect(err).toMatchObject({ code: 'UNSAFE_ARCHIVE', message: /unpacks to more than 1048576 bytes/ })
  })

  test('a tarball over the download limit', async () => {
    const { tarball } = await publish()
    const err = await refused(options({ limits: { downloadBytes: tarball.length - 1 } }))
    expect(err).toMatchObject({ code: 'DOWNLOAD_FAILED', message: `${NAME} is ${tarball.length} bytes, more than the limit of ${tarball.length - 1}` })
  })

  test('a truncated download: refused; the next attempt resumes and succeeds', async () => {
    // Incompressible content, so the tarball is large enough to cut in the middle.
    const { tarball } = await publish({ entries: [{ name: 'widget-1.2.0/blob', content: Buffer.from(Array.from({ length: 200_000 }, (_, i) => (i * 7919) % 256)) }, ...goodEntries().slice(1)] })
    server.files.set(`/widget/1.2.0/${NAME}`, { body: tarball, cutAfter: Math.floor(tarball.length / 2) })
    const o = options()
    const err = await refused(o)
    expect(err).toMatchObject({ code: 'DOWNLOAD_FAILED', message: expect.stringMatching(new RegExp(`^${NAME.replaceAll('.', '\\.')}: (the connection broke|the download ended) after \\d+ of ${tarball.length} bytes`)) })
    const partial = (await stat(path.join(o.downloadDir, `${NAME}.part`))).size

    server.files.set(`/widget/1.2.0/${NAME}`, { body: tarball })
    const result = await fetchVerifiedRelease(o)
    expect(result).toMatchObject({ downloaded: tarball.length, resumedFrom: partial, sha256: sha256(tarball) })
    expect(await exists(path.join(o.staging, 'blob'))).toBe(true)
  })
})
