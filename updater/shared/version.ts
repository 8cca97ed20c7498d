import semver from 'semver'

// Replaced at build time by deploy/build.ts (esbuild `define`); absent when run unbuilt.
declare const __UPKEEP_VERSION__: string | undefined
declare const __UPKEEP_COMMIT__: string | undefined

export const DEV_VERSION = '0.0.0-dev'

export interface BuildInfo {
  /** `1.4.0`, `1.4.0-3-gabc1234` between tags, `0.0.0-dev` when run unbuilt. */
  version: string
  /** Full commit sha the build was made from, `unknown` when not known. */
  commit: string
}

/** What this very process was built as. */
export function currentBuild(): BuildInfo {
  return {
    version: typeof __UPKEEP_VERSION__ === 'string' ? __UPKEEP_VERSION__ : DEV_VERSION,
    commit: typeof __UPKEEP_COMMIT__ === 'string' ? __UPKEEP_COMMIT__ : 'unknown',
  }
}

const TAG_RE = /^v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?$/

/** `v1.2.3` or `v1.2.3-rc.1`: the only tags Upkeep treats as releases. */
export function isReleaseTag(tag: string): boolean {
  return TAG_RE.test(tag) && semver.valid(tag.slice(1)) !== null
}

/** Throws with a hint unless `tag` is a release tag. */
export function verifyReleaseTag(tag: string): string {
  if (!isReleaseTag(tag)) {
    throw new TypeError(`"${tag}" is not a release tag; tags look like v1.2.3 (or v1.2.3-rc.1)`)
  }
  return tag
}

/** Accepts `1.2.3` or `v1.2.3` and returns the tag `v1.2.3`. */
export function tagForVersion(version: string): string {
  return verifyReleaseTag(version.startsWith('v') ? version : `v${version}`)
}

/** `git describe --tags` output → version: `v1.4.0` → `1.4.0`, `v1.4.0-3-gabc1234` → `1.4.0-3-gabc1234`. */
export function versionFromDescribe(describe: string): string {
  const d = describe.trim()
  return d.startsWith('v') ? d.slice(1) : d
}

// `git describe` adds "-<commits>-g<sha>" after the tag; semver would read that as a prerelease
// (lower than the tag), but such a build is *ahead* of the tag.
const DESCRIBE_SUFFIX = /^(.+)-(\d+)-g[0-9a-f]{4,40}$/

function splitDescribe(version: string): { base: string; ahead: number } {
  const v = version.startsWith('v') ? version.slice(1) : version
  const m = DESCRIBE_SUFFIX.exec(v)
  if (m && semver.valid(m[1]!)) return { base: m[1]!, ahead: Number(m[2]) }
  return { base: v, ahead: 0 }
}

/** Orders versions and `git describe` strings; unparsable versions sort lowest. */
export function compareVersions(a: string, b: string): number {
  const x = splitDescribe(a)
  const y = splitDescribe(b)
  const vx = semver.valid(x.base)
  const vy = semver.valid(y.base)
  if (!vx || !vy) return vx ? 1 : vy ? -1 : 0
  return semver.compare(vx, vy) || Math.sign(x.ahead - y.ahead)
}

export function isNewer(candidate: string, running: string): boolean {
  return compareVersions(candidate, running) > 0
}

/** True inside a bundle made by `npm run build`; false when run from the TypeScript sources. */
export function isBuilt(): boolean {
  return typeof __UPKEEP_VERSION__ === 'string'
}
