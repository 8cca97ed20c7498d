import { lstat, rename, rm, stat } from 'node:fs/promises'
import path from 'node:path'
import type { ArtifactsDefinition } from '../shared/apps/definition'
import { UpdateError } from '../shared/errors'
import type { InstalledFrom } from '../shared/installed-from'
import { UPKEEP_APP } from '../shared/paths'
import { readReleaseCache } from '../shared/release-cache'
import { writeReleaseManifest } from '../adapters/release-manifest'
import { parseRepoBuildConfig, planBuild, type RepoBuildConfig } from '../app-config'
import type { ArtifactSource } from '../artifacts/artifact-source'
import type { Progress } from '../artifacts/download'
import { fetchVerifiedRelease } from '../artifacts/verified-release'
import { formatBytes } from '../backup-archive'
import type { StepContext } from '../context'

/**
 * The pinned keys decide what runs as the app: the file must be one the app's own user (and the
 * server) cannot rewrite. It is root's beside the app's definition; where one user owns
 * everything (no systemd, a laptop) there is nobody else to keep out.
 */
export async function verifyPinnedKeys(ctx: Pick<StepContext, 'paths' | 'user'>): Promise<void> {
  const file = ctx.paths.allowedSigners
  const s = await lstat(file).catch(() => undefined)
  // No file: the signature check itself says that no key is pinned, and how to pin one.
  if (!s) return
  const refuse = (why: string, hint: string) => {
    throw new UpdateError('UNTRUSTED_SIGNER', `the pinned keys of ${ctx.paths.app}, ${file}, ${why}`, { step: 'build', hint })
  }
  if (!s.isFile()) refuse('is not a regular file', `pin the keys again: upkeep app trust ${ctx.paths.app} --key KEY.pub --replace (as root)`)
  if ((s.mode & 0o022) !== 0) refuse('can be changed by other users', `chmod 644 ${file}`)
  const dirOwner = (await stat(path.dirname(file))).uid
  if (s.uid === ctx.user.uid && dirOwner !== ctx.user.uid) {
    refuse(`belong to ${ctx.user.name}, the user the app runs as, who could then trust any key`, `chown root: ${file}`)
  }
}

/** The release's own upkeep.json, read from the tag's commit (serverEntry and healthPath apply to its artifact too). */
async function releaseConfig(ctx: StepContext, commit: string): Promise<RepoBuildConfig> {
  const r = await ctx.artifacts.run('git', ['cat-file', 'blob', `${commit}:upkeep.json`], { cwd: ctx.paths.appDir })
  if (r.code !== 0) return parseRepoBuildConfig(undefined)
  try {
    return parseRepoBuildConfig(JSON.parse(r.stdout))
  } catch (err) {
    if (err instanceof UpdateError) throw err
    throw new UpdateError('BAD_CONFIG', `upkeep.json of the release is not valid JSON: ${(err as Error).message}`, { step: 'build' })
  }
}

/** No GitHub request before the release checks' rate-limit time (the server keeps it in the release cache). */
async function githubNotBefore(ctx: StepContext): Promise<Date | undefined> {
  const until = (await readReleaseCache(ctx.paths.releaseCache))?.rateLimitedUntil
  const at = until ? new Date(until) : undefined
  return at && !Number.isNaN(at.getTime()) ? at : undefined
}

/** Download progress for the live log: status events as they come, a log line every tenth. */
function progressReporter(ctx: StepContext): (p: Progress) => void {
  let nextLine = 0
  return (p) => {
    void ctx.touch()
    void ctx.emit({ type: 'progress', step: 'build', done: p.done, ...(p.total !== undefined ? { total: p.total } : {}), unit: 'bytes' })
    const at = p.total ? Math.floor((p.done * 10) / p.total) : Math.floor(p.done / (16 << 20))
    if (at < nextLine && p.done !== p.total) return
    nextLine = at + 1
    const of = p.total ? ` of ${formatBytes(p.total)} (${Math.floor((p.done * 100) / p.total)}%)` : ''
    void ctx.emit({ type: 'log', level: 'info', step: 'build', message: `downloaded ${formatBytes(p.done)}${of}` })
  }
}

/**
 * Installs the release from its signed artifact instead of building it: downloaded (resumably,
 * within the size limit), its SHA256SUMS signature checked against the app's pinned keys, its
 * checksum checked, unpacked into staging as the app's user, then moved to its release
 * directory like a build. Any refusal fails the step before the switch; there is no fallback to
 * a source build (that is `upkeep update --from-source`, the operator's decision).
 */
export async function installArtifact(ctx: StepContext, a: ArtifactsDefinition, releaseDir: () => Promise<string>): Promise<Record<string, unknown>> {
  const { j, paths } = ctx
  const staging = paths.staging(j.to.tag)
  await verifyPinnedKeys(ctx)
  const source: ArtifactSource = a.source.kind === 'github' ? { github: a.source.repo } : { url: a.source.pattern }
  const notBefore = a.source.kind === 'github' ? await githubNotBefore(ctx) : undefined
  const log = (message: string) => void ctx.emit({ type: 'log', level: 'info', step: 'build', message })
  log(`installing the signed release artifact of ${j.to.tag} from ${a.source.kind === 'github' ? `the GitHub release of ${a.source.repo}` : new URL(a.source.pattern.replaceAll('{version}', j.to.version).replaceAll('{tag}', j.to.tag)).origin}`)
  const got = await fetchVerifiedRelease({
    source,
    app: ctx.app.name,
    version: j.to.version,
    tag: j.to.tag,
    downloadDir: path.join(paths.downloads, j.to.tag),
    staging,
    allowedSignersFile: paths.allowedSigners,
    limits: {
      ...(a.maxDownloadBytes !== undefined ? { downloadBytes: a.maxDownloadBytes } : {}),
      ...(a.maxUnpackedBytes !== undefined ? { unpackedBytes: a.maxUnpackedBytes } : {}),
    },
    fetch: ctx.artifacts.fetch,
    now: () => ctx.clock.now(),
    run: ctx.artifacts.run,
    githubApiUrl: ctx.artifacts.githubApiUrl,
    ...(ctx.artifacts.githubToken ? { githubToken: ctx.artifacts.githubToken } : {}),
    ...(notBefore ? { notBefore } : {}),
    userAgent: ctx.artifacts.userAgent,
    onProgress: progressReporter(ctx),
    log,
    signal: ctx.signal,
  }).catch((err: unknown) => {
    // Not there, or not now: the operator may choose to build this release instead. (A release
    // that fails its checks is never offered that way: its hint says not to install it.)
    if (err instanceof UpdateError && (err.code === 'DOWNLOAD_FAILED' || err.code === 'RATE_LIMITED')) {
      const command = `upkeep${ctx.app.name === UPKEEP_APP ? '' : ` --app ${ctx.app.name}`} update ${j.to.tag} --from-source`
      throw new UpdateError(err.code, err.message, { step: 'build', hint: `${err.hint ?? 'try again later'}; or build it from its tag's source instead: ${command}`, cause: err })
    }
    throw err
  })
  const installedFrom: InstalledFrom = { kind: 'artifact', signer: got.signer.principal, fingerprint: got.signer.fingerprint }
  const plan = planBuild(ctx.app, await releaseConfig(ctx, j.to.commit!))
  if (plan.serverEntry && !(await stat(path.join(staging, plan.serverEntry)).then((s) => s.isFile(), () => false))) {
    await rm(staging, { recursive: true, force: true })
    throw new UpdateError('UNSAFE_ARCHIVE', `${got.artifact} has no ${plan.serverEntry}: it is not a build of ${ctx.app.name}`, {
      step: 'build',
      hint: 'the release artifact must hold the finished build at its top level; tell its maintainer, or install from source: upkeep update --from-source',
    })
  }
  // The updater's own record of the release, whatever the archive says of itself.
  await writeReleaseManifest(staging, {
    tag: j.to.tag,
    version: j.to.version,
    commit: j.to.commit!,
    serverEntry: plan.serverEntry ?? '',
    ...(plan.healthPath ? { healthPath: plan.healthPath } : {}),
    builtAt: ctx.clock.now().toISOString(),
    installedFrom,
  })
  const release = await releaseDir()
  await rm(release, { recursive: true, force: true })
  await rename(staging, release)
  j.to.release = release
  j.to.installedFrom = installedFrom
  await ctx.save()
  log(`installed ${got.artifact} (${formatBytes(got.downloaded)}, ${got.unpacked.files} files), signed by ${installedFrom.signer} (${installedFrom.fingerprint})`)
  return {
    artifact: got.artifact,
    sha256: got.sha256,
    bytes: got.downloaded,
    resumedFrom: got.resumedFrom,
    files: got.unpacked.files,
    unpackedBytes: got.unpacked.bytes,
    signer: installedFrom.signer,
    fingerprint: installedFrom.fingerprint,
    timings: got.timings,
    release: path.relative(paths.appDir, release),
  }
}
