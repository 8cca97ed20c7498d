import { lstat, realpath, stat } from 'node:fs/promises'
import path from 'node:path'
import { cleanEnv } from '../adapters/clean-env'
import type { RunAs } from '../adapters/exec'
import { ownerOf, readLinkTarget } from '../adapters/fs'
import { UpdateError } from '../shared/errors'
import { parseLsRemoteTags } from '../shared/ls-remote'
import { compareVersions, isReleaseTag, versionFromDescribe } from '../shared/version'
import type { RunAsUser } from './run-as'

// What a checkout says about itself, read as root without acting as root in it: the owner and
// the `current` link from the file system, everything git knows from git run as the owner.

export interface CheckoutFacts {
  /** As given (normalised) and resolved: a unit may name either. */
  checkout: string
  realPath: string
  owner: RunAs
  isGit: boolean
  /** Undefined when git was not run (root's checkout, not a git checkout). */
  git?: GitFacts
  /** Where `current` points (resolved), when it is a symlink. */
  currentTarget?: string
}

export interface GitFacts {
  remoteUrl?: string
  /** Release tags on the remote, newest first; or why they could not be listed. */
  tags: { ok: true; release: string[] } | { ok: false; error: string }
  describe?: string
  commit?: string
  /** The build the checkout's own upkeep.json (at HEAD) describes. */
  repoBuild?: { commands?: string[][]; outDir?: string }
}

/** The version running now, and how it was found. */
export interface RunningVersion {
  version: string
  tag?: string
  commit?: string
  from: string
}

const GIT_TIMEOUT_MS = 30_000

export async function inspectCheckout(checkout: string, runAs: RunAsUser): Promise<CheckoutFacts> {
  const s = await stat(checkout).catch((err: NodeJS.ErrnoException) => {
    throw new UpdateError('NOT_FOUND', `${checkout} does not exist (${err.code})`, { hint: `Clone the app there first, as the user it runs as: sudo -u USER git clone URL ${checkout}` })
  })
  if (!s.isDirectory()) throw new UpdateError('NOT_FOUND', `${checkout} is not a directory`, { hint: 'Name the directory of the app’s git checkout.' })
  const realPath = await realpath(checkout)
  const owner = await ownerOf(checkout)
  const isGit = await lstat(path.join(checkout, '.git')).then(() => true, () => false)
  const currentTarget = await readLinkTarget(path.join(checkout, 'current'))
  const facts: CheckoutFacts = { checkout, realPath, owner, isGit, ...(currentTarget ? { currentTarget } : {}) }
  // git never runs as root in a checkout: a root-owned one is refused with its fix instead.
  if (!isGit || owner.uid === 0) return facts
  facts.git = await gitFacts(checkout, owner, runAs)
  return facts
}

async function gitFacts(checkout: string, owner: RunAs, runAs: RunAsUser): Promise<GitFacts> {
  const env = cleanEnv(owner)
  const git = (args: string[]) => runAs(owner, 'git', ['-C', checkout, ...args], { cwd: checkout, env, timeoutMs: GIT_TIMEOUT_MS })
  const remote = await git(['remote', 'get-url', 'origin'])
  const remoteUrl = remote.code === 0 ? remote.stdout.trim() || undefined : undefined
  let tags: GitFacts['tags']
  if (!remoteUrl) tags = { ok: false, error: 'the checkout has no remote "origin"' }
  else {
    const ls = await git(['ls-remote', '--tags', 'origin'])
    tags =
      ls.code === 0
        ? { ok: true, release: [...parseLsRemoteTags(ls.stdout).keys()].filter(isReleaseTag).sort((a, b) => compareVersions(b, a)) }
        : { ok: false, error: firstLine(ls.stderr) || `git ls-remote exited ${ls.code}` }
  }
  const describe = await git(['describe', '--tags', '--match', 'v[0-9]*.[0-9]*.[0-9]*', '--abbrev=7'])
  const head = await git(['rev-parse', '--verify', '--quiet', 'HEAD'])
  const manifest = await git(['show', 'HEAD:upkeep.json'])
  return {
    ...(remoteUrl ? { remoteUrl } : {}),
    tags,
    ...(describe.code === 0 && describe.stdout.trim() ? { describe: describe.stdout.trim() } : {}),
    ...(head.code === 0 && head.stdout.trim() ? { commit: head.stdout.trim() } : {}),
    ...(manifest.code === 0 ? { repoBuild: repoBuildOf(manifest.stdout) } : {}),
  }
}

/** The build part of an upkeep.json; nothing when it is not what it should be (the build step reports that). Pure. */
export function repoBuildOf(text: string): GitFacts['repoBuild'] {
  try {
    const v = JSON.parse(text) as { buildCommands?: unknown; outDir?: unknown }
    const commands = Array.isArray(v.buildCommands) && v.buildCommands.every((c) => Array.isArray(c) && c.length > 0 && c.every((a) => typeof a === 'string')) ? (v.buildCommands as string[][]) : undefined
    return { ...(commands ? { commands } : {}), ...(typeof v.outDir === 'string' ? { outDir: v.outDir } : {}) }
  } catch {
    return {}
  }
}

function firstLine(text: string): string {
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean)
  return lines.find((l) => /^(fatal|error):/.test(l)) ?? lines[0] ?? ''
}

/**
 * The version that runs now. In the releases layout the release `current` points at names it
 * (`.upkeep/releases/v1.2.0`); otherwise, and when it does not, `git describe` of the checkout. Pure.
 */
export function runningVersion(facts: CheckoutFacts): RunningVersion | undefined {
  const commit = facts.git?.commit
  const release = facts.currentTarget ? path.basename(facts.currentTarget).replace(/\+[0-9a-f]{8}$/, '') : undefined
  const releases = [facts.checkout, facts.realPath].map((c) => path.join(c, '.upkeep', 'releases'))
  if (release && isReleaseTag(release) && releases.includes(path.dirname(facts.currentTarget!))) {
    return { version: versionFromDescribe(release), tag: release, ...(facts.git?.describe === release && commit ? { commit } : {}), from: `current → .upkeep/releases/${release}` }
  }
  const d = facts.git?.describe
  if (!d) return undefined
  // `v1.0.0-3-gabc1234` (three commits after the tag) is a version, not a tag.
  const onTag = isReleaseTag(d) && !/-\d+-g[0-9a-f]{4,40}$/.test(d)
  return { version: versionFromDescribe(d), ...(onTag ? { tag: d } : {}), ...(commit ? { commit } : {}), from: `git describe --tags: ${d}` }
}
