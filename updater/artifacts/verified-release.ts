import { mkdir, readFile, rm } from 'node:fs/promises'
import path from 'node:path'
import { isUpdateError, UpdateError } from '../shared/errors'
import { resolveArtifacts, type ArtifactSource, type ReleaseArtifacts } from './artifact-source'
import { expectedSha256, MAX_SUMS_BYTES, parseSha256Sums, verifySha256 } from './checksums'
import { DownloadStatusError, downloadFile, type Progress } from './download'
import type { RunTool } from './run-tool'
import { verifySignature, type Signer } from './signature'
import { DEFAULT_UNPACK_LIMITS, unpackTarGz, type Unpacked } from './unpack'

export interface ArtifactLimits {
  /** The tarball's size as downloaded. Default 512 MiB. */
  downloadBytes: number
  /** Its files' total size once unpacked. Default 2 GiB. */
  unpackedBytes: number
  /** Entries in the archive. Default 200 000. */
  entries: number
}

export const DEFAULT_ARTIFACT_LIMITS: ArtifactLimits = {
  downloadBytes: 512 << 20,
  unpackedBytes: DEFAULT_UNPACK_LIMITS.maxBytes,
  entries: DEFAULT_UNPACK_LIMITS.maxEntries,
}

export interface FetchReleaseOptions {
  source: ArtifactSource
  /** The app's name: releases publish `<app>-<version>.tar.gz` (GitHub assets). */
  app: string
  version: string
  tag: string
  /** Kept between attempts so an interrupted download resumes; emptied once the release is unpacked. */
  downloadDir: string
  /** Where the release is unpacked; must not exist. Left absent when anything is refused. */
  staging: string
  /** The app's pinned keys (allowed-signers format). */
  allowedSignersFile: string
  limits?: Partial<ArtifactLimits>
  fetch: typeof fetch
  now: () => Date
  run: RunTool
  githubApiUrl?: string
  githubToken?: string
  /** No GitHub request before this (the release checks' `rateLimitedUntil`). */
  notBefore?: Date
  /** Progress of the tarball's download, for the live log. */
  onProgress?: (p: Progress) => void
  /** One line per stage, for the live log. */
  log?: (message: string) => void
  userAgent?: string
  /** Stops a download in progress (the partial file is kept for a resume). */
  signal?: AbortSignal
}

/** Where the time went, for the history and the bench. */
export interface ReleaseTimings {
  /** Finding the release and fetching and verifying SHA256SUMS and its signature. */
  signatureMs: number
  downloadMs: number
  checksumMs: number
  unpackMs: number
}

export interface VerifiedRelease {
  staging: string
  artifact: string
  sha256: string
  signer: Signer
  downloaded: number
  resumedFrom: number
  unpacked: Unpacked
  timings: ReleaseTimings
  rateLimitedUntil?: Date
}

/**
 * A prebuilt release, verified and unpacked into staging: resolve its three files, check the
 * signature of SHA256SUMS against the pinned keys (before the large download), find the
 * tarball's line, download the tarball (resuming an earlier attempt), check its sha256, unpack it
 * safely. Each refusal is an UpdateError naming what was wrong; staging then does not exist.
 */
export async function fetchVerifiedRelease(o: FetchReleaseOptions): Promise<VerifiedRelease> {
  const limits = { ...DEFAULT_ARTIFACT_LIMITS, ...o.limits }
  const log = o.log ?? (() => {})
  let mark = performance.now()
  const lap = () => {
    const t = performance.now()
    const ms = Math.round(t - mark)
    mark = t
    return ms
  }
  const what = `SHA256SUMS of ${o.app} ${o.tag}`
  const artifacts: ReleaseArtifacts = await resolveArtifacts(o.source, {
    app: o.app,
    version: o.version,
    tag: o.tag,
    fetch: o.fetch,
    now: o.now,
    githubApiUrl: o.githubApiUrl,
    githubToken: o.githubToken,
    notBefore: o.notBefore,
    userAgent: o.userAgent,
  })
  await mkdir(o.downloadDir, { recursive: true })
  const sumsFile = path.join(o.downloadDir, 'SHA256SUMS')
  const sigFile = path.join(o.downloadDir, 'SHA256SUMS.sig')
  const tarball = path.join(o.downloadDir, artifacts.name)
  const common = { fetch: o.fetch, now: o.now, userAgent: o.userAgent, ...(o.signal ? { signal: o.signal } : {}) }

  // The small files are fetched afresh each time: a stale pair from an earlier attempt proves nothing.
  for (const f of [sumsFile, sigFile]) await rm(f, { force: true })
  log(`downloading ${artifacts.sums.url}`)
  await downloadFile(artifacts.sums, sumsFile, { ...common, maxBytes: MAX_SUMS_BYTES })
  try {
    await downloadFile(artifacts.signature, sigFile, { ...common, maxBytes: 16 << 10 })
  } catch (err) {
    if (!(err instanceof DownloadStatusError && err.status === 404)) throw err
    // verifySignature says SIGNATURE_MISSING for an absent file.
  }
  const signer = await verifySignature(o.run, { messageFile: sumsFile, signatureFile: sigFile, allowedSignersFile: o.allowedSignersFile, what })
  log(`SHA256SUMS is signed by ${signer.principal} (${signer.fingerprint})`)
  const sha256 = expectedSha256(parseSha256Sums(await readFile(sumsFile, 'utf8')), artifacts.name)
  const signatureMs = lap()

  log(`downloading ${artifacts.tarball.url}`)
  const got = await downloadFile(artifacts.tarball, tarball, { ...common, maxBytes: limits.downloadBytes, onProgress: o.onProgress })
  const downloadMs = lap()
  try {
    await verifySha256(tarball, sha256, artifacts.name)
  } catch (err) {
    // A damaged or altered download must not be resumed from.
    await rm(tarball, { force: true })
    throw err
  }
  const checksumMs = lap()
  log(`${artifacts.name} matches its signed checksum; unpacking`)
  let unpacked: Unpacked
  try {
    unpacked = await unpackTarGz(tarball, o.staging, { maxBytes: limits.unpackedBytes, maxEntries: limits.entries })
  } catch (err) {
    if (isUpdateError(err)) throw err
    throw new UpdateError('INTERNAL', `cannot unpack ${artifacts.name}: ${(err as Error).message}`, { hint: 'check free space and permissions of the staging directory', cause: err })
  }
  const unpackMs = lap()
  await rm(o.downloadDir, { recursive: true, force: true })
  return {
    staging: o.staging,
    artifact: artifacts.name,
    sha256,
    signer,
    downloaded: got.bytes,
    resumedFrom: got.resumedFrom,
    unpacked,
    timings: { signatureMs, downloadMs, checksumMs, unpackMs },
    ...(artifacts.rateLimitedUntil ? { rateLimitedUntil: artifacts.rateLimitedUntil } : {}),
  }
}
